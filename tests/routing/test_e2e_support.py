"""Helpers shared by the routing end-to-end tests (``test_e2e_*.py``); this module holds no tests.

Each test starts simulated providers (the ``start_sim`` fixture) and a gateway in
front of them with :func:`routed`: the real :class:`~stellwerk.gateway.Gateway`, or,
when a test needs to move time or seed the router's RNG, the same wiring with the
clock and the RNG injected. Requests go through the
official ``openai`` SDK where its view matters, and through Stellwerk's own pooled
HTTP client in loops (several times cheaper per request). What each simulated
provider served is read from ``sim.stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openai
import orjson

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.http.client import HTTPClient
from stellwerk.sim import SimProvider
from support import GUARD, RawResponse, request

__all__ = ["Answer", "Routed", "SkewClock", "StartSim", "VirtualClock", "routed", "say", "served"]

StartSim = Callable[..., Awaitable[SimProvider]]


class VirtualClock:
    """Virtual time shared by the router and simulated providers: a sim's sleep (its latency) moves the clock
    at once, so the router measures exactly the configured latencies. One request at a time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SkewClock:
    """``time.monotonic()`` plus an offset that a test moves forward *between* requests (never during
    one), so that rate-limit windows and decaying latency averages are crossed without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def deployment(self) -> str:
        return self.headers["x-stellwerk-deployment"]

    @property
    def route(self) -> str:
        return self.headers["x-stellwerk-route"]


def say(text: str = "Hello there") -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


class Routed:
    """A running gateway with two clients: ``sdk`` (the official SDK) and :meth:`chat` (Stellwerk's HTTP client)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.sdk = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="client-key", max_retries=0, timeout=GUARD)
        self._http = HTTPClient()
        self._url = f"{gateway.base_url}/chat/completions"

    async def chat(self, model: str, text: str = "Hello there", *, headers: Mapping[str, str] | None = None,
                   **params: Any) -> Answer:
        """One complete chat; answers of any status are returned, not raised."""
        body = orjson.dumps({"model": model, "messages": say(text), **params})
        response = await self._http.request(
            "POST", self._url, [("content-type", "application/json"), *(headers or {}).items()], body, timeout=GUARD)
        data = await response.read(GUARD)
        return Answer(response.status, dict(response.headers), orjson.loads(data))

    async def admin(self, method: str, path: str, body: Any = b"", headers: Mapping[str, str] | None = None,
                    **query: str) -> RawResponse:
        """An admin request, e.g. ``admin("GET", "/admin/route", model="chat", prompt="Hi")``."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        return await request(self.gateway.port, method, path, body, dict(headers or {}))

    async def close(self) -> None:
        await self.sdk.close()
        await self._http.close()
        await self.gateway.close()


@contextlib.asynccontextmanager
async def routed(data: dict[str, Any], *, clock: Callable[[], float] | None = None,
                 seed: int | None = None) -> AsyncIterator[Routed]:
    """A gateway for config ``data`` on an ephemeral port: :class:`Gateway` itself, or an
    :class:`Gateway` with them injected when ``clock`` or ``seed`` is given. Closed on exit."""
    if clock is None and seed is None:
        gateway: Gateway = Gateway(load_dict(data, env={}))
    else:
        gateway = Gateway(load_dict(data, env={}), clock=clock or time.monotonic, rng=random.Random(seed or 0))
    await gateway.start("127.0.0.1", 0)
    running = Routed(gateway)
    try:
        yield running
    finally:
        await running.close()


def served(*sims: SimProvider) -> list[int]:
    """Chat requests each simulated provider answered successfully."""
    return [sim.stats.ok for sim in sims]
