from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from keys_support import governed_config, start_governed

from stellwerk.gateway import Gateway


@pytest.fixture
async def governed(start_sim: Any, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """``await governed(keys=None, sim=None, **server)``: a gateway with a master key and a store in tmp_path."""
    gateways: list[Gateway] = []

    async def start(*, keys: list[dict[str, Any]] | None = None, api_base: str | None = None,
                    **server: Any) -> Gateway:
        if api_base is None:
            sim = await start_sim()
            api_base = f"{sim.base_url}"
        gateway = await start_governed(governed_config(api_base, tmp_path / "stw.db", keys=keys, **server))
        gateways.append(gateway)
        return gateway

    yield start
    for gateway in gateways:
        await gateway.close(grace=1.0)
