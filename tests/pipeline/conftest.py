"""Fixtures of the pipeline tests: routers in virtual time over the scripted fake transport of ``tests/resilience``.

``resilience_support`` (VirtualTime, FakeTransport and its behaviours) lives next to the resilience tests; its
folder is put on ``sys.path`` here so that these tests also run on their own.
"""

from __future__ import annotations

import random
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "resilience"))

from resilience_support import FakeTransport, VirtualTime

from stellwerk import Router


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def transport(vtime: VirtualTime) -> FakeTransport:
    return FakeTransport(vtime)


@pytest.fixture
async def fake_router(vtime: VirtualTime, transport: FakeTransport) -> AsyncIterator[Callable[..., Router]]:
    """``fake_router(*models, **router_options)``: a Router on the fake transport, in virtual time (closed at teardown)."""
    made: list[Router] = []

    def make(*models: dict[str, Any], **options: Any) -> Router:
        router = Router.from_dict({"models": list(models)}, env={}, transport=transport, clock=vtime, sleep=vtime.sleep,
                                  rng=options.pop("rng", random.Random(7)), **options)
        made.append(router)
        return router

    yield make
    for router in made:
        await router.aclose()
