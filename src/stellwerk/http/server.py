"""A small, fast HTTP/1.1 server: asyncio protocol + ``httptools`` parser.

The server knows nothing about LLMs. It turns bytes into :class:`Request`
objects, calls one async *handler*, and writes the :class:`Response` or
:class:`StreamingResponse` it returns. Everything an HTTP server must get right
lives here, once, and every client-controlled quantity is bounded:

* keep-alive and pipelined requests (answered in order, one at a time);
* a request head limit (``MAX_HEAD_SIZE``, 431), checked before bytes beyond it
  are parsed, and a body-size limit enforced from ``Content-Length`` *before*
  the body is read, and while reading chunked bodies (413); both close;
* deadlines: the head must arrive within ``header_timeout`` of its first byte,
  the body within ``body_timeout`` (or at ``body_min_rate`` on average),
  otherwise 408 and close (slowloris); idle keep-alive connections are closed
  after ``keepalive_timeout``;
* back-pressure both ways: while a request is being handled, reading stops
  once more than one further request or 64 KiB of body is queued; every
  response waits for a slow reader (``pause_writing``) before the next;
* ``max_connections``: past it, new connections get a canned 503 and are closed;
* ``Expect: 100-continue``, answered only for the request about to be handled;
* malformed requests answered with 400 and the connection closed;
* a client that disconnects cancels the handler's task, so upstream work
  started on its behalf is cancelled too;
* graceful shutdown: the listener closes at once, in-flight requests and
  streams get ``grace`` seconds; streams still running then end with the
  *interrupted* event and a terminating chunk (never mid-frame).

Why not ASGI: every ASGI server adds a translation layer (scope dicts,
``receive``/``send`` coroutines) that costs more CPU per request than the rest
of the gateway's proxying; ``bench/RESULTS.md`` has the measurements.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any, Final

import httptools

from .messages import (
    ErrorBodyFactory,
    Handler,
    InterruptFactory,
    Request,
    Response,
    StreamingResponse,
    encode_response,
    error_body_factory,
    head_parts,
    header_name,
    interrupted_event_factory,
)

__all__ = [
    "HTTPServer",
    "Handler",
    "Request",
    "Response",
    "StreamingResponse",
    "error_body_factory",
]

log = logging.getLogger("stellwerk.http")

MAX_HEAD_SIZE: Final = 64 * 1024
"""Largest request line plus headers accepted; larger heads get 431."""
QUEUE_LIMIT: Final = 64 * 1024
"""Body bytes of requests waiting behind the one being handled above which reading stops."""
_SLICE: Final = 16 * 1024
"""Bytes fed to the parser at a time when more than that arrived at once (so that a pause takes effect)."""
_SEEN_NAMES: Final = 32
_SEEN_VALUE: Final = 256
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_LINGER: Final = 2.0
"""Seconds an answered error waits for the client to stop sending before the connection is closed."""


class _Connection(asyncio.Protocol):
    """One client connection. Parses requests and runs them through the handler in order."""

    __slots__ = (
        "_backlog",
        "_body",
        "_body_size",
        "_closing",
        "_drain_waiter",
        "_expect_continue",
        "_head_fields",
        "_head_size",
        "_headers",
        "_interrupted",
        "_parser",
        "_paused_writing",
        "_peer",
        "_pending_error",
        "_phase_started",
        "_queue",
        "_queued_bytes",
        "_rejected",
        "_seen",
        "_server",
        "_streaming",
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
        self._seen: dict[str, tuple[bytes, str]] = {}
        """The last value of each header name, raw and as text: a keep-alive client sends most of its headers
        unchanged, and reusing the text skips a decode per header and keeps its hash, which Python caches in the
        string (the keyring looks ``authorization`` up by its text). At most :data:`_SEEN_NAMES` names, values of
        at most :data:`_SEEN_VALUE` bytes."""
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: collections.deque[Request] = collections.deque()
        self._queued_bytes = 0
        self._backlog: bytes | None = None
        """Bytes received but not parsed while reading is paused (at most one read)."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._rejected = False
        self._paused_writing = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._peer = ""
        self._pending_error: tuple[int, str] | None = None
        self._head_size = 0
        """Bytes of the current request head fed so far; -1 while reading a body."""
        self._head_fields = 0
        self._phase_started = 0.0
        self._expect_continue = False
        self._streaming = False
        self._interrupted = False
        self.last_active = 0.0

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        server = self._server
        if len(server.connections) >= server.max_connections or not server.accepting:
            self._closing = True  # refused cheaply: a canned answer, no parsing, not counted
            self._transport.write(server.busy_answer)  # type: ignore[union-attr]
            transport.close()
            return
        peer = transport.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
        self.last_active = server.loop.time()
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server.connections.discard(self)
        self._queue.clear()
        self._backlog = None
        if self._task is not None and not self._task.done():
            # The client went away: cancel whatever we were doing on its behalf.
            self._task.cancel()
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_exception(ConnectionResetError("client disconnected"))

    def data_received(self, data: bytes) -> None:
        if self._closing or self._rejected:
            return
        self.last_active = now = self._server.loop.time()
        if self._backlog is not None:  # reading is paused; a read already under way still lands here
            self._backlog += data
            return
        if self._task is None and self._head_size == 0 and len(data) <= _SLICE:
            # The common case, inlined: a new request (or several) in one small read, nothing queued.
            self._phase_started = now
            self._head_size = len(data)  # below MAX_HEAD_SIZE: checked on the next read if the head goes on
            try:
                self._parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                self._reject(400, "protocol upgrades are not supported")
            except httptools.HttpParserError as exc:
                if not self._rejected:
                    self._reject(400, f"malformed HTTP request: {exc}")
            return
        self._feed(data)

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- feeding the parser, bounded ----------------------------------------
    def _feed(self, data: bytes) -> None:
        """Parse ``data``: never more of a head than ``MAX_HEAD_SIZE``, and not past a full queue."""
        view: bytes | memoryview = data
        while view:
            if self._task is not None and (len(self._queue) > 1 or self._queued_bytes + self._body_size > QUEUE_LIMIT):
                self._hold(view)
                return
            head = self._head_size
            if head >= 0:
                if head == 0:
                    self._phase_started = self.last_active  # a request head begins
                limit = min(MAX_HEAD_SIZE - head, _SLICE)
            else:
                limit = _SLICE
            if len(view) > limit:
                if view.__class__ is bytes:
                    view = memoryview(view)
                piece, view = view[:limit], view[limit:]
            else:
                piece, view = view, b""
            if head >= 0:
                self._head_size = head + len(piece)
            try:
                self._parser.feed_data(piece)
            except httptools.HttpParserUpgrade:
                self._reject(400, "protocol upgrades are not supported")
            except httptools.HttpParserError as exc:
                if not self._rejected:
                    self._reject(400, f"malformed HTTP request: {exc}")
            if self._rejected or self._closing:
                return
            if self._head_size >= MAX_HEAD_SIZE:
                # Still no end of headers after this many bytes: refuse rather than buffer on.
                self._reject(431, f"request line and headers exceed {MAX_HEAD_SIZE} bytes")
                return

    def _hold(self, rest: bytes | memoryview) -> None:
        """Stop reading until the queue drains (the bytes of the read under way are kept)."""
        self._backlog = bytes(rest)
        if self._transport is not None:
            self._transport.pause_reading()

    def _release(self) -> None:
        backlog = self._backlog
        if backlog is None or self._closing:
            return
        self._backlog = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()
        self._phase_started = self._server.loop.time()  # the client was not the one waiting
        self._feed(backlog)

    # -- httptools callbacks ----------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._head_fields = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_fields += len(url)
        if self._head_fields > MAX_HEAD_SIZE:
            self._reject(431, f"request line and headers exceed {MAX_HEAD_SIZE} bytes")
            raise httptools.HttpParserError("head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_fields += len(name) + len(value) + 4
        if self._head_fields > MAX_HEAD_SIZE:
            self._reject(431, f"request line and headers exceed {MAX_HEAD_SIZE} bytes")
            raise httptools.HttpParserError("head too large")
        key = header_name(name)
        seen = self._seen.get(key)
        if seen is not None and seen[0] == value:  # as in this connection's last request: the same text again
            text = seen[1]
        else:
            text = value.decode("latin-1")
            if len(value) <= _SEEN_VALUE and (seen is not None or len(self._seen) < _SEEN_NAMES):
                self._seen[key] = (value, text)
        old = self._headers.get(key)
        self._headers[key] = text if old is None else f"{old}, {text}"

    def on_headers_complete(self) -> None:
        self._head_size = -1  # now reading the body: bytes are bounded by max_body_size instead
        self._phase_started = self.last_active
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
            if self._task is None and not self._queue:
                self._transport.write(_CONTINUE)
            else:
                self._expect_continue = True  # sent when this request is the one being answered

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._server.max_body_size:
            self._reject(413, f"request body exceeds the limit of {self._server.max_body_size} bytes")
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._head_size = 0  # whatever follows is the next request's head
        self._expect_continue = False
        parser = self._parser
        if parser.should_upgrade():
            self._reject(400, "protocol upgrades are not supported")
            raise httptools.HttpParserError("upgrade")
        try:
            parsed: Any = httptools.parse_url(self._url)  # its stubs say bytes where it gives None
        except httptools.HttpParserInvalidURLError:
            self._reject(400, "invalid request URL")
            raise httptools.HttpParserError("bad url") from None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        self._body_size = 0
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
        self._queued_bytes += len(body)
        if self._task is None:
            self._task = self._server.loop.create_task(self._run())

    # -- request processing -----------------------------------------------
    def _reject(self, status: int, message: str) -> None:
        """Refuse an unprocessable request: requests before it are still answered, then the error, then close."""
        if self._rejected:
            return
        self._rejected = True
        self._pending_error = (status, message)
        self._backlog = None
        if self._task is None and not self._queue:
            self._write_error_and_close(status, message)
        elif self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()  # nothing more will be parsed

    def _write_error_and_close(self, status: int, message: str) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        path = self._url.split(b"?", 1)[0].decode("latin-1", "replace") if self._url else ""
        body = self._server.error_body(status, message, path)
        transport.write(encode_response(status, "application/json", None, False, body))
        self._closing = True
        if not transport.can_write_eof():
            transport.close()
            return
        # Lingering close: half-close and discard what the client still sends for a moment, so that it
        # reads the error instead of a reset that may destroy it (a 408 interrupts a client mid-send).
        transport.write_eof()
        transport.resume_reading()
        self._server.loop.call_later(_LINGER, self._close)

    async def _run(self) -> None:
        try:
            while self._queue and not self._closing:
                request = self._queue.popleft()
                self._queued_bytes -= len(request.body)
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
                    keep_alive = await self._send_stream(response, keep_alive, request.path)
                else:
                    self._send(response, keep_alive)
                    if self._paused_writing:
                        await self._drain()  # a client that does not read gets nothing more
                if not keep_alive or not self._server.accepting:
                    self._close()
                    return
                if self._backlog is not None:
                    self._release()
        except asyncio.CancelledError:
            self._close()
        except ConnectionError:
            self._close()
        finally:
            self._task = None
            self.last_active = self._phase_started = self._server.loop.time()
            pending = self._pending_error
            if pending is not None and not self._closing:
                self._write_error_and_close(*pending)
            elif not self._closing:
                if self._expect_continue and self._transport is not None:
                    self._expect_continue = False
                    self._transport.write(_CONTINUE)
                if self._backlog is not None:
                    self._release()

    def _send(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(encode_response(response.status, response.content_type, response.headers, keep_alive,
                                        response.body, response.head))

    async def _send_stream(self, response: StreamingResponse, keep_alive: bool, path: str) -> bool:
        transport = self._transport
        assert transport is not None
        parts = head_parts(response.status, response.content_type, response.headers, keep_alive, response.head)
        parts.append(b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
        transport.write(b"".join(parts))
        chunks = response.chunks
        self._streaming = True
        error: BaseException | None = None
        failed = False
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                if self._closing:
                    raise ConnectionResetError("client disconnected")
                transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))  # one write per frame: never a partial one
                if self._paused_writing:
                    await self._drain()
        except asyncio.CancelledError as cancelled:  # one name per type (compiled, a name has one type)
            if self._interrupted and not transport.is_closing():
                event = self._server.interrupted_event(path)
                transport.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(event), event))
            error = cancelled
        except ConnectionError as lost:
            error = lost
        except Exception:
            log.exception("stream producer failed after headers were sent; closing connection")
            failed = True
        except BaseException as other:
            error = other
        self._streaming = False
        # Always finalize the producer now (not at garbage collection), so that upstream connections it holds are
        # closed when the client goes away. Not in a finally block: compiled with mypyc, a coroutine that awaits
        # in a finally block entered by an exception leaves that exception set as the one being handled after it
        # (a later stream whose producer returns from an except block then re-raises it here).
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
        if error is not None:
            raise error
        if failed:
            return False
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

    def eof_received(self) -> bool | None:
        return None  # the client is done sending: close (after what is buffered went out)

    # -- the server's sweeps ----------------------------------------------
    @property
    def busy(self) -> bool:
        return self._task is not None

    def sweep(self, now: float) -> None:
        """Close an idle connection; answer 408 to one whose request head or body is overdue."""
        if self._task is not None or self._closing or self._rejected:
            return  # being answered (the handler has its own deadlines)
        server = self._server
        head = self._head_size
        if head > 0:
            if now - self._phase_started > server.header_timeout:
                self._reject(408, f"the request head did not arrive within {server.header_timeout:g}s")
        elif head < 0:
            elapsed = now - self._phase_started
            rate = server.body_min_rate
            if elapsed > server.body_timeout and (rate <= 0 or self._body_size < rate * elapsed):
                self._reject(408, f"the request body did not arrive within {server.body_timeout:g}s")
        elif now - self.last_active > server.keepalive_timeout:
            self._close()

    def interrupt(self) -> None:
        """Shutdown grace is over: end a stream with the interrupted event; cut anything else."""
        task = self._task
        if task is not None and not task.done():
            self._interrupted = self._streaming
            task.cancel()
        else:
            self._close()

    def abort(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.abort()


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
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        body_min_rate: int = 16 * 1024,
        max_connections: int = 4096,
        error_body: ErrorBodyFactory = error_body_factory,
        interrupted_event: InterruptFactory = interrupted_event_factory,
        backlog: int = 2048,
    ) -> None:
        self.handler = handler
        self.max_body_size = max_body_size
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.max_connections = max_connections
        self.error_body = error_body
        self.interrupted_event = interrupted_event
        self.backlog = backlog
        self.connections: set[_Connection] = set()
        self.accepting = True
        self.loop = asyncio.get_event_loop()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        body = error_body(503, f"the server holds its maximum of {max_connections} connections; retry shortly", "")
        self.busy_answer = encode_response(503, "application/json", [("retry-after", "1")], False, body)

    @property
    def port(self) -> int:
        server: Any = self._server  # uvloop's `sockets` is a list, asyncio's a tuple
        assert server is not None and server.sockets
        return int(server.sockets[0].getsockname()[1])

    async def start(self, host: str = "127.0.0.1", port: int = 0, reuse_port: bool = False) -> None:
        """Listen; ``reuse_port``: share the port with other processes (SO_REUSEPORT: the kernel spreads
        connections over them)."""
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(
            lambda: _Connection(self), host, port, backlog=self.backlog, reuse_address=True, reuse_port=reuse_port or None
        )
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        shortest = min(self.keepalive_timeout, self.header_timeout, self.body_timeout)
        interval = max(0.05, min(5.0, shortest / 4))
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            conn.sweep(now)
        self._schedule_sweep()

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening at once; let in-flight requests and streams finish for up to ``grace`` seconds.

        Idle connections are closed at once, busy ones once their answer is sent. When the grace
        period is over, streams end with the interrupted event and a terminating chunk; anything
        else still running is cut.
        """
        self.accepting = False
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if not conn.busy:
                conn._close()
        deadline = self.loop.time() + grace
        while self.loop.time() < deadline and any(c.busy for c in self.connections):
            await asyncio.sleep(min(0.02, max(0.0, deadline - self.loop.time())))
        for conn in list(self.connections):
            conn.interrupt()
        settle = self.loop.time() + 1.0  # producers finalize (upstream connections closed), bytes flush
        while self.loop.time() < settle and self.connections:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn.abort()
        if self._server is not None:
            await self._server.wait_closed()
