"""A small, fast HTTP/1.1 server: asyncio protocol + ``httptools`` parser.

The server knows nothing about LLMs. It turns bytes into :class:`Request`
objects, calls one async *handler*, and writes the :class:`Response` or
:class:`StreamingResponse` it returns. Everything an HTTP server must get right
lives here, once:

* keep-alive and pipelined requests (answered in order, one at a time);
* a body-size limit enforced from ``Content-Length`` *before* the body is read,
  and while reading chunked bodies (answered with 413, connection closed);
* ``Expect: 100-continue``;
* malformed requests answered with 400 and the connection closed;
* back-pressure for streamed responses (a slow client pauses the producer);
* a client that disconnects cancels the handler's task, so upstream work
  started on its behalf is cancelled too;
* idle keep-alive connections are closed after ``keepalive_timeout``.

Why not ASGI: every ASGI server adds a translation layer (scope dicts,
``receive``/``send`` coroutines) that costs more CPU per request than the rest
of the gateway's proxying; ``bench/RESULTS.md`` has the measurements.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Final

import httptools

__all__ = [
    "HTTPServer",
    "Handler",
    "Request",
    "Response",
    "StreamingResponse",
    "error_body_factory",
]

log = logging.getLogger("stellwerk.http")

_REASONS: Final = {s.value: s.phrase.encode() for s in HTTPStatus}
MAX_HEAD_SIZE: Final = 64 * 1024
"""Largest request line plus headers accepted; larger heads get 431."""


class Request:
    """One parsed HTTP request. Header names are lower-case; repeats are joined."""

    __slots__ = ("body", "client", "headers", "http_version", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        client: str = "",
        http_version: str = "1.1",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client = client
        self.http_version = http_version


class Response:
    """A complete response. ``headers`` are extra headers besides content-type/length."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type


class StreamingResponse:
    """A response whose body is produced by an async iterator of byte chunks.

    Sent with ``Transfer-Encoding: chunked``. If the iterator raises after the
    headers went out, the connection is closed without the terminating chunk,
    so the client sees an incomplete body rather than a silently short one.
    """

    __slots__ = ("chunks", "content_type", "headers", "status")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "text/event-stream",
    ) -> None:
        self.status = status
        self.chunks = chunks
        self.headers = headers
        self.content_type = content_type


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]
ErrorBodyFactory = Callable[[int, str, str], bytes]
"""``(status, message, path)`` → body, for errors the HTTP layer answers itself (the path may be ``""``)."""


def error_body_factory(status: int, message: str, path: str = "") -> bytes:
    """Default body for errors raised by the HTTP layer itself (400/413/500)."""
    import orjson

    kind = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "code": status}})


def _head(status: int, content_type: str, extra: list[tuple[str, str]] | None, keep_alive: bool) -> bytearray:
    out = bytearray(b"HTTP/1.1 %d %s\r\ncontent-type: " % (status, _REASONS.get(status, b"Unknown")))
    out += content_type.encode("latin-1")
    if extra:
        for name, value in extra:
            out += b"\r\n%s: %s" % (name.encode("latin-1"), value.encode("latin-1"))
    if not keep_alive:
        out += b"\r\nconnection: close"
    return out


class _Connection(asyncio.Protocol):
    """One client connection. Parses requests and runs them through the handler in order."""

    __slots__ = (
        "_body",
        "_body_size",
        "_closing",
        "_drain_waiter",
        "_head_size",
        "_headers",
        "_parser",
        "_paused_writing",
        "_peer",
        "_pending_error",
        "_queue",
        "_rejected",
        "_server",
        "_task",
        "_transport",
        "_url",
        "last_active",
    )

    def __init__(self, server: HTTPServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: collections.deque[Request] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._rejected = False
        self._paused_writing = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._peer = ""
        self._pending_error: tuple[int, str] | None = None
        self._head_size = 0
        self.last_active = 0.0

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        self.last_active = self._server.loop.time()
        self._server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)
        self._queue.clear()
        if self._task is not None and not self._task.done():
            # The client went away: cancel whatever we were doing on its behalf.
            self._task.cancel()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("client disconnected"))

    def data_received(self, data: bytes) -> None:
        if self._closing or self._rejected:
            return
        self.last_active = self._server.loop.time()
        in_head = self._head_size >= 0
        if in_head:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
            if in_head and self._head_size > MAX_HEAD_SIZE:
                # Still no end of headers after this many bytes: refuse rather than buffer on.
                self._reject(431, f"request line and headers exceed {MAX_HEAD_SIZE} bytes")
        except httptools.HttpParserUpgrade:
            self._reject(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if not self._rejected:
                self._reject(400, f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks ----------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self._head_size = -1  # now reading the body: bytes are bounded by max_body_size instead
        length = self._headers.get("content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                self._reject(400, "invalid Content-Length header")
                raise httptools.HttpParserError("bad content-length") from None
            if size > self._server.max_body_size:
                self._reject(413, f"request body of {size} bytes exceeds the limit of {self._server.max_body_size} bytes")
                raise httptools.HttpParserError("body too large")
        if self._headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._server.max_body_size:
            self._reject(413, f"request body exceeds the limit of {self._server.max_body_size} bytes")
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._head_size = 0  # whatever follows is the next request's head
        parser = self._parser
        if parser.should_upgrade():
            self._reject(400, "protocol upgrades are not supported")
            raise httptools.HttpParserError("upgrade")
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._reject(400, "invalid request URL")
            raise httptools.HttpParserError("bad url") from None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(
            parser.get_method().decode("ascii"),
            parsed.path.decode("latin-1") if parsed.path else "/",
            parsed.query.decode("latin-1") if parsed.query else "",
            self._headers,
            body,
            self._peer,
            parser.get_http_version(),
        )
        self._queue.append(request)
        if self._task is None:
            self._task = self._server.loop.create_task(self._run())

    # -- request processing -----------------------------------------------
    def _reject(self, status: int, message: str) -> None:
        """Refuse an unprocessable request: requests before it are still answered, then the error, then close."""
        if self._rejected:
            return
        self._rejected = True
        self._pending_error = (status, message)
        if self._task is None and not self._queue:
            self._write_error_and_close(status, message)

    def _write_error_and_close(self, status: int, message: str) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        path = self._url.split(b"?", 1)[0].decode("latin-1", "replace") if self._url else ""
        body = self._server.error_body(status, message, path)
        head = _head(status, "application/json", None, keep_alive=False)
        head += b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        transport.write(bytes(head) + body)
        transport.close()
        self._closing = True

    async def _run(self) -> None:
        try:
            while self._queue and not self._closing:
                request = self._queue.popleft()
                keep_alive = self._server.accepting and (request.headers.get("connection", "").lower() != "close") and (
                    request.http_version == "1.1" or request.headers.get("connection", "").lower() == "keep-alive"
                )
                try:
                    response = await self._server.handler(request)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("unhandled error in handler for %s %s", request.method, request.path)
                    response = Response(500, self._server.error_body(500, "internal server error", request.path))
                if isinstance(response, StreamingResponse):
                    keep_alive = await self._send_stream(response, keep_alive)
                else:
                    self._send(response, keep_alive)
                if not keep_alive:
                    self._close()
                    return
        except asyncio.CancelledError:
            self._close()
        except ConnectionError:
            self._close()
        finally:
            self._task = None
            pending = self._pending_error
            if pending is not None and not self._closing:
                self._write_error_and_close(*pending)

    def _send(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        head = _head(response.status, response.content_type, response.headers, keep_alive)
        body = response.body
        head += b"\r\ncontent-length: %d\r\n\r\n" % len(body)
        head += body
        transport.write(head)

    async def _send_stream(self, response: StreamingResponse, keep_alive: bool) -> bool:
        transport = self._transport
        assert transport is not None
        head = _head(response.status, response.content_type, response.headers, keep_alive)
        head += b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        transport.write(head)
        chunks = response.chunks
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if self._closing:
                    raise ConnectionResetError("client disconnected")
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                if self._paused_writing:
                    await self._drain()
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception:
            log.exception("stream producer failed after headers were sent; closing connection")
            return False
        finally:
            # Always finalize the producer now (not at garbage collection), so that
            # upstream connections it holds are closed when the client goes away.
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        if not transport.is_closing():
            transport.write(b"0\r\n\r\n")
        return keep_alive

    async def _drain(self) -> None:
        if self._closing:
            raise ConnectionResetError("client disconnected")
        self._drain_waiter = self._server.loop.create_future()
        try:
            await self._drain_waiter
        finally:
            self._drain_waiter = None

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def close_if_idle(self, now: float, idle_timeout: float) -> None:
        if self._task is None and now - self.last_active > idle_timeout:
            self._close()


class HTTPServer:
    """Serves one handler on one TCP socket.

    >>> server = HTTPServer(handler)
    >>> await server.start("127.0.0.1", 4000)
    >>> await server.close()
    """

    def __init__(
        self,
        handler: Handler,
        *,
        max_body_size: int = 32 * 1024 * 1024,
        keepalive_timeout: float = 75.0,
        error_body: ErrorBodyFactory = error_body_factory,
        backlog: int = 2048,
    ) -> None:
        self.handler = handler
        self.max_body_size = max_body_size
        self.keepalive_timeout = keepalive_timeout
        self.error_body = error_body
        self.backlog = backlog
        self.connections: set[_Connection] = set()
        self.accepting = True
        self.loop = asyncio.get_event_loop()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _Connection(self), host, port, backlog=self.backlog, reuse_address=True
        )
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        interval = max(0.5, min(5.0, self.keepalive_timeout / 4))
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.close_if_idle(now, self.keepalive_timeout)
        self._schedule_sweep()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish for up to ``grace`` seconds, close the rest."""
        self.accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline and any(c._task is not None for c in self.connections):
            await asyncio.sleep(0.02)
        for conn in list(self.connections):
            conn._close()
        if self._server is not None:
            await self._server.wait_closed()
