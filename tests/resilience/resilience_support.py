"""Helpers for the resilience tests: virtual time, a scripted fake transport, a router factory.

The fake transport implements :class:`stellwerk.http.client.Transport`. Each
deployment ``X`` of a test config points at ``http://X.fake/v1``; the transport
routes a request by that host to the deployment's *script*: a list of
behaviours used in turn, the last one repeating. A behaviour is an async
function ``(call, time) -> FakeResponse`` that may advance the virtual clock,
raise a transport error, or wait on an event (a hang, which records the
cancellation when the router gives up on it).
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from stellwerk import Router
from stellwerk.http.client import ConnectError, ReadError, TimeoutError_
from stellwerk.testing import ScriptedResponse


class VirtualTime:
    """A clock and a sleep: sleeping advances the clock at once and is recorded."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CeilingRandom(random.Random):
    """``uniform(a, b)`` returns ``b``: full-jitter backoff waits exactly its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


FakeResponse = ScriptedResponse
"""What ``Transport.request`` returns here: the package's typed double of the HTTP client's response."""


@dataclass
class Call:
    """One request the router sent."""

    deployment: str
    method: str
    path: str
    body: dict[str, Any]
    timeout: float | None
    started: float
    stream: bool
    cancelled: bool = False
    response: FakeResponse | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.body.get("messages", [])
        return messages


Behaviour = Callable[[Call, VirtualTime], Awaitable[FakeResponse]]


@dataclass
class FakeTransport:
    time: VirtualTime
    scripts: dict[str, list[Behaviour]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    started: dict[str, asyncio.Event] = field(default_factory=lambda: collections.defaultdict(asyncio.Event))
    """Set when a request to the deployment arrives."""

    def script(self, deployment: str, *behaviours: Behaviour) -> None:
        """Behaviours for the deployment's next requests, in order; the last one repeats."""
        self.scripts[deployment] = list(behaviours)

    def to(self, deployment: str) -> list[Call]:
        return [c for c in self.calls if c.deployment == deployment]

    def order(self) -> list[str]:
        return [c.deployment for c in self.calls if c.method == "POST"]

    async def request(self, method: str, url: str, headers: Sequence[tuple[str, str]] | bytes, body: bytes = b"",
                      *, timeout: float | None = None, connect_timeout: float | None = None) -> FakeResponse:
        parts = urlsplit(url)
        deployment = (parts.hostname or "").split(".")[0]
        data = orjson.loads(body) if body else {}
        call = Call(deployment, method, parts.path, data, timeout, self.time(), bool(data.get("stream")))
        self.calls.append(call)
        self.started[deployment].set()
        script = self.scripts.get(deployment) or [ok()]
        behaviour = script.pop(0) if len(script) > 1 else script[0]
        try:
            call.response = await behaviour(call, self.time)
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        return call.response

    async def close(self) -> None:
        return None


# -- behaviours ---------------------------------------------------------------------------------------------------
def completion(text: str = "fine", model: str = "up") -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    })


def sse(data: dict[str, Any] | str) -> bytes:
    return b"data: " + (data.encode() if isinstance(data, str) else orjson.dumps(data)) + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, cid: str = "chatcmpl-fake") -> bytes:
    return sse({"id": cid, "object": "chat.completion.chunk", "created": 1700000000, "model": "up",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def stream_chunks(pieces: Sequence[str], cid: str = "chatcmpl-fake") -> list[bytes]:
    return [chunk({"role": "assistant", "content": ""}, cid=cid), *(chunk({"content": p}, cid=cid) for p in pieces),
            chunk({}, "stop", cid=cid), b"data: [DONE]\n\n"]


def ok(text: str = "fine", latency: float = 0.0) -> Behaviour:
    """A complete answer (or stream of ``text`` word by word) after ``latency`` virtual seconds."""
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        time.advance(latency)
        if call.stream:
            return FakeResponse(chunks=stream_chunks(text.split(" ")))
        if call.method == "GET":
            return FakeResponse(body=b'{"object":"list","data":[]}')
        return FakeResponse(body=completion(text))
    return behave


def status(code: int, message: str = "upstream trouble", *, error_code: str | None = None,
           headers: dict[str, str] | None = None, latency: float = 0.0) -> Behaviour:
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        time.advance(latency)
        body = orjson.dumps({"error": {"message": message, "type": "error", "param": None, "code": error_code}})
        return FakeResponse(code, headers, body)
    return behave


def timeout() -> Behaviour:
    """No answer within the attempt's timeout: the clock moves on by that timeout."""
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        assert call.timeout is not None
        time.advance(call.timeout)
        raise TimeoutError_(f"no answer within {call.timeout}s")
    return behave


def refused() -> Behaviour:
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        raise ConnectError("connection refused")
    return behave


def hang(release: asyncio.Event | None = None, then: Behaviour | None = None) -> Behaviour:
    """Wait until ``release`` is set (forever without one), then behave as ``then`` (default: ok)."""
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        await (release.wait() if release is not None else asyncio.get_running_loop().create_future())
        return await (then or ok())(call, time)
    return behave


def stream(chunks: Sequence[bytes | Exception]) -> Behaviour:
    async def behave(call: Call, time: VirtualTime) -> FakeResponse:
        return FakeResponse(chunks=list(chunks))
    return behave


def cut() -> ReadError:
    return ReadError("upstream closed the connection")


# -- router -------------------------------------------------------------------------------------------------------
def fake_deployment(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "provider": "openai", "model": f"up-{id}", "api_base": f"http://{id}.fake/v1", **fields}


def fake_model(name: str, *deployments: str | dict[str, Any], **fields: Any) -> dict[str, Any]:
    deps = [fake_deployment(d) if isinstance(d, str) else d for d in deployments]
    return {"name": name, "deployments": deps, **fields}


NO_JITTER_BREAKER = {"consecutive_failures": 3, "open_time": 5, "max_open_time": 60, "jitter": 0}
NO_BREAKER = {"consecutive_failures": 1000, "min_requests": 1_000_000}


def make_router(*models: dict[str, Any], time: VirtualTime, transport: FakeTransport,
                rng: random.Random | None = None) -> Router:
    return Router.from_dict({"models": list(models)}, env={}, transport=transport, clock=time, sleep=time.sleep,
                            rng=rng or random.Random(7))
