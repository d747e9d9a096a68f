"""Fixtures of the provider tests: fake upstreams that replay a provider's wire fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from provider_support import ReplayUpstream, Reply


@pytest.fixture
async def start_replay() -> AsyncIterator[Callable[[Reply], Awaitable[ReplayUpstream]]]:
    """``await start_replay(reply)`` starts a :class:`ReplayUpstream` on 127.0.0.1."""
    upstreams: list[ReplayUpstream] = []

    async def start(reply: Reply) -> ReplayUpstream:
        upstream = await ReplayUpstream(reply).start()
        upstreams.append(upstream)
        return upstream

    yield start
    for upstream in upstreams:
        await upstream.close()
