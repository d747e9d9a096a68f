"""Test helpers: config builders, a capturing upstream, raw HTTP/1.1 over TCP.

Waits are bounded by generous *hang guards* (``GUARD``) that only fire when
something is broken; no test asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stellwerk.http.client import HTTPClient, TimeoutError_, UpstreamResponse
from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse

GUARD = 30.0
"""Seconds after which a wait is considered hung (a failure), never reached when things work: also on a machine
whose load is several times its cores, where a test gets a small share of a CPU (a passing test never waits for it,
so it costs nothing)."""
STARTUP = GUARD * 2
"""Seconds a child process (a gateway, a sim provider, the CLI) may take to start: its imports cost 1-2 s of CPU,
many times that in wall time on a loaded machine. A hang guard, like ``GUARD``."""
MAX_BODY = 64 << 20
"""Largest response body the raw client accepts (a runaway response is a failure, not an OOM)."""


# -- config helpers ------------------------------------------------------------------------------------------------
def deployment(id: str, api_base: str, **fields: Any) -> dict[str, Any]:
    """A deployment config dict (provider ``openai``, upstream model ``up-<id>``)."""
    return {"id": id, "provider": "openai", "model": f"up-{id}", "api_base": api_base, **fields}


def model(name: str, *deployments: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "deployments": list(deployments), **fields}


def config(*models: dict[str, Any], **server: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"models": list(models)}
    if server:
        data["server"] = server
    return data


def closed_port_url() -> str:
    """A base URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


USER = [{"role": "user", "content": "Hello there"}]


# -- a capturing upstream --------------------------------------------------------------------------------------------
@dataclass
class Captured:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


Responder = Callable[[Request], Awaitable[Response | StreamingResponse]]


def completion_body(content: str | None = "Hello from upstream", *, model: str = "up", prompt_tokens: int | None = 10,
                    completion_tokens: int = 5, tool_calls: list[dict[str, Any]] | None = None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    data: dict[str, Any] = {
        "id": "chatcmpl-capture", "object": "chat.completion", "created": 1700000000, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if tool_calls else "stop"}],
    }
    if prompt_tokens is not None:
        data["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
    return orjson.dumps(data)


def chunk_event(delta: dict[str, Any] | None = None, finish: str | None = None, *,
                usage: dict[str, int] | None = None) -> bytes:
    data: dict[str, Any] = {"id": "chatcmpl-capture", "object": "chat.completion.chunk", "created": 1700000000,
                            "model": "up"}
    if usage is not None:
        data["choices"] = []
        data["usage"] = usage
    else:
        data["choices"] = [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}]
    return b"data: " + orjson.dumps(data) + b"\n\n"


def stream_events(words: Iterable[str] = ("Hello", " from", " upstream"), *, include_usage: bool = True,
                  prompt_tokens: int = 10) -> list[bytes]:
    words = list(words)
    events = [chunk_event({"role": "assistant", "content": ""})]
    events += [chunk_event({"content": w}) for w in words]
    events.append(chunk_event({}, "stop"))
    if include_usage:
        events.append(chunk_event(usage={"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                                         "total_tokens": prompt_tokens + len(words)}))
    events.append(b"data: [DONE]\n\n")
    return events


async def _iterate(events: list[bytes]) -> AsyncIterator[bytes]:
    for event in events:
        yield event


def error_response(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                   headers: list[tuple[str, str]] | None = None) -> Response:
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    return Response(status, body, headers)


async def default_respond(req: Request) -> Response | StreamingResponse:
    """An OpenAI-compatible answer: a fixed completion, stream or embeddings list."""
    path = req.path.removeprefix("/v1")
    if path.endswith("/chat/completions"):
        body = orjson.loads(req.body)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            return StreamingResponse(_iterate(stream_events(include_usage=options.get("include_usage") is True)))
        return Response(200, completion_body())
    if path.endswith("/embeddings"):
        return Response(200, orjson.dumps({
            "object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
            "model": "up", "usage": {"prompt_tokens": 3, "total_tokens": 3}}))
    return error_response(404, f"no route {path}")


class CaptureUpstream:
    """An upstream that records every request and answers with ``respond`` (replaceable at any time).

    ``cancelled`` is set when a handler or stream producer made by :meth:`hang_forever` /
    :meth:`stream_then_hang` is cancelled, i.e. when the gateway closed its connection. ``started`` is set, and
    ``held`` counts up, each time one of them (or a responder calling :meth:`hold`) begins to hold for good.
    """

    def __init__(self, respond: Responder = default_respond) -> None:
        self.respond: Responder = respond
        self.requests: list[Captured] = []
        self.cancelled = asyncio.Event()
        self.started = asyncio.Event()
        self.held = 0
        self.server = HTTPServer(self._handle)

    async def _handle(self, req: Request) -> Response | StreamingResponse:
        self.requests.append(Captured(req.method, req.path, req.query, dict(req.headers), req.body))
        return await self.respond(req)

    async def start(self) -> None:
        await self.server.start("127.0.0.1", 0)

    async def close(self) -> None:
        await self.server.close(grace=0.5)

    @property
    def count(self) -> int:
        return len(self.requests)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/v1"

    @property
    def last(self) -> Captured:
        return self.requests[-1]

    # -- canned behaviours -------------------------------------------------------------------------------------------
    def hold(self) -> None:
        self.held += 1
        self.started.set()

    async def hang_forever(self, req: Request) -> Response:
        self.hold()
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self.cancelled.set()
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream_then_hang(self, req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""})
            yield chunk_event({"content": "partial"})
            self.hold()
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                self.cancelled.set()
            yield b""  # pragma: no cover

        return StreamingResponse(chunks())


# -- attempt timeouts without the wall clock -------------------------------------------------------------------------
class Waits:
    """A sim's ``sleep`` (``start_sim(sleep=...)``) that counts the waits begun: while one lasts, the sim holds a
    request (``VirtualTimeouts({sim.base_url: lambda: waits.count})``)."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        await asyncio.sleep(seconds)


class VirtualTimeouts:
    """A transport for a gateway (``start_gateway(data, transport=...)``): the real HTTP client, whose timeouts only
    run once nothing but a timeout can happen.

    ``holds`` maps the base URL of an upstream to how many requests or streams it holds so far, for good
    (``lambda: sim.stats.hang`` for a sim with ``hang_rate=1.0``). Once that count grew after a request was sent,
    the request's timeout starts (for its answer; a stream's idle timeout for its next chunk): only what the
    upstream sent before it held still arrives, and then the timeout passes, whatever the load of the machine.
    Until then, and for every other upstream, nothing is timed: connecting, sending and answering take as long as
    they take, never an attempt's timeout. A wait past :data:`GUARD` is a hang (an ``AssertionError``, which the
    gateway answers with a 500). For upstreams that hold one request or stream at a time, or all of them.

    :meth:`clock` is a virtual clock: it stands still but for the timeouts that passed here. Given to the gateway
    (``clock=transport.clock``), its deadlines see only that time pass. Only for one request at a time: a timeout
    passing would shorten the deadlines of the requests in flight alongside.
    """

    def __init__(self, holds: Mapping[str, Callable[[], int]]) -> None:
        self.holds = holds
        self.client = HTTPClient()
        self.timeouts: list[float] = []
        """Each timeout that passed (a request or a stream held by its upstream), in order."""
        self.now = time.monotonic()

    def clock(self) -> float:
        return self.now

    def passed(self, timeout: float, what: str) -> TimeoutError_:
        self.timeouts.append(timeout)
        self.now += timeout
        return TimeoutError_(f"no {what} within {timeout:g}s")

    async def request(self, method: str, url: str, headers: Sequence[tuple[str, str]] | bytes, body: bytes = b"",
                      *, timeout: float | None = None, connect_timeout: float | None = None) -> UpstreamResponse:
        held = next((count for base, count in self.holds.items() if url.startswith(base)), None)
        before = held() if held is not None else 0
        sending = asyncio.ensure_future(self.client.request(method, url, headers, body))
        try:
            async with _hang_guard(f"{method} {url}"):
                if held is not None and timeout is not None and not await _done_unless_held(sending, held, before):
                    await _within(sending, timeout, lambda: self.passed(timeout, "response"))
                return _Untimed(await sending, self, held, before)
        finally:
            await _cancel(sending)

    async def close(self) -> None:
        await self.client.close()


class _Untimed:
    """An upstream response whose reads are not timed out (hang-guarded), unless its upstream holds it."""

    def __init__(self, response: UpstreamResponse, transport: VirtualTimeouts, held: Callable[[], int] | None,
                 before: int) -> None:
        self.response = response
        self.status = response.status
        self.headers = response.headers
        self._transport = transport
        self._held = held
        self._before = before

    async def read(self, timeout: float | None = None) -> bytes:
        async with _hang_guard("reading a response"):
            return await self.response.read()

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes:
        reading = asyncio.ensure_future(self.response.next_chunk())
        try:
            async with _hang_guard("reading a chunk"):
                held = self._held
                if held is not None and idle_timeout is not None and not await _done_unless_held(
                        reading, held, self._before):
                    await _within(reading, idle_timeout, lambda: self._transport.passed(idle_timeout, "chunk"))
                return await reading
        finally:
            await _cancel(reading)

    def close(self, finished: bool = False) -> None:
        self.response.close(finished)


async def _done_unless_held(task: asyncio.Future[Any], held: Callable[[], int], before: int) -> bool:
    """Wait until ``task`` is done (True) or the upstream's count of held requests moved past ``before`` (False)."""
    while not task.done():
        if held() != before:
            return False
        await asyncio.wait({task}, timeout=0.005)  # a condition, polled: the upstream's count
    return True


async def _within(task: asyncio.Future[Any], timeout: float, passed: Callable[[], TimeoutError_]) -> None:
    """The upstream holds for good: what it sent before still arrives within ``timeout``, else ``passed()``."""
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        raise passed()


async def _cancel(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it ended (its outcome is dropped; a cancellation of the caller is not)."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: no "never retrieved" report for an error the caller already got or dropped


@contextlib.asynccontextmanager
async def _hang_guard(what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(GUARD):
            yield
    except TimeoutError:
        raise AssertionError(f"hung for {GUARD}s: {what}") from None


# -- raw HTTP ---------------------------------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    raw_head: bytes = field(default=b"", repr=False)

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


class RawConnection:
    """A plain TCP connection speaking hand-written HTTP/1.1 (for what no client library sends)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_head(self) -> RawResponse:
        async with asyncio.timeout(GUARD):
            head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return RawResponse(status, headers, raw_head=head)

    async def read_chunk(self) -> bytes | None:
        """One chunk of a chunked body; ``None`` for the terminating chunk."""
        async with asyncio.timeout(GUARD):
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
        return data[:-2] if size else None

    async def read_response(self) -> RawResponse:
        """One whole response; bounded in total (a peer that keeps sending forever is a failure too)."""
        async with asyncio.timeout(GUARD * 2):
            return await self._read_response()

    async def _read_response(self) -> RawResponse:
        response = await self.read_head()
        if response.status < 200:
            return response
        if "content-length" in response.headers:
            async with asyncio.timeout(GUARD):
                response.body = await self.reader.readexactly(int(response.headers["content-length"]))
        elif response.headers.get("transfer-encoding") == "chunked":
            parts: list[bytes] = []
            while (chunk := await self.read_chunk()) is not None:
                parts.append(chunk)
                if sum(map(len, parts)) > MAX_BODY:
                    raise AssertionError(f"response body exceeds {MAX_BODY} bytes")
            response.body = b"".join(parts)
        else:
            async with asyncio.timeout(GUARD):
                response.body = await self.reader.read()
        return response

    async def at_eof(self) -> bool:
        """True when the peer closed the connection (waits for it, bounded by the guard)."""
        async with asyncio.timeout(GUARD):
            try:
                rest = await self.reader.read()
            except ConnectionResetError:
                return True
        return rest == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()

    async def __aenter__(self) -> RawConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def http_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                 *, content_length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if content_length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def request(port: int, method: str, path: str, body: bytes | Any = b"",
                  headers: dict[str, str] | None = None) -> RawResponse:
    """One request on a fresh connection; ``body`` may be bytes or a JSON-able value."""
    if not isinstance(body, bytes):
        body = orjson.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    async with await RawConnection.open(port) as conn:
        await conn.send(http_request(method, path, body, headers))
        return await conn.read_response()


async def read_response_stream(client: Any, **request: Any) -> tuple[list[str], list[str], Any]:
    """A ``/v1/responses`` stream read whole with the openai SDK: its event types, its text deltas and the final
    response."""
    kinds: list[str] = []
    text: list[str] = []
    async with client.responses.stream(**request) as stream:
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
        final = await stream.get_final_response()
    return kinds, text, final
