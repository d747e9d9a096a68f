"""A small, fast HTTP/1.1 client with per-origin keep-alive pools.

The gateway's hot path makes one upstream request per client request, so the
client's cost per request matters as much as the server's. This client does
only what an LLM gateway needs: ``POST``/``GET`` with a byte body, a response
whose body is read whole or streamed chunk by chunk, TLS, keep-alive pooling,
and deadlines. It is injected into the router as a :class:`Transport`, so
tests and other transports can replace it.

Errors are raised as :class:`TransportError` subclasses only:

    TransportError
    ├── ConnectError      could not open a connection (refused, DNS, TLS, connect timeout)
    ├── ReadError         the connection broke while waiting for or reading the response
    ├── TimeoutError_     no response headers (or no next body chunk) before the deadline
    └── ProtocolError     the upstream spoke malformed HTTP or sent oversized headers
        └── ResponseTooLarge  a response body to be read whole exceeds ``max_response_size``

A body read whole (:meth:`ClientResponse.read`) is limited by ``max_response_size``
(a ``Content-Length`` above it fails as soon as the headers arrive); a streamed
body is limited by what is buffered unread (reading pauses above 1 MiB). The
response head (status line and headers) is limited to ``MAX_HEAD_SIZE``.

A request on a pooled connection that the peer closed while idle is retried
once on a fresh connection, only when no byte of a response was received and
the request is idempotent (GET, or an ``Idempotency-Key`` header). Idle
connections are dropped after ``keepalive_expiry`` (4 s by default: below the
5 s idle timeout of uvicorn-based servers such as vLLM), so that the race with
a server closing an idle connection is rare.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit

import httptools

from stellwerk.generator_like import GeneratorLike

from .proxy import Proxy

__all__ = [
    "ClientResponse",
    "ConnectError",
    "HTTPClient",
    "ProtocolError",
    "ReadError",
    "ResponseTooLarge",
    "Route",
    "TimeoutError_",
    "Transport",
    "TransportError",
    "UpstreamResponse",
]

_HIGH_WATER = 1 << 20  # pause reading from a streamed upstream answer above 1 MiB buffered
MAX_HEAD_SIZE = 64 * 1024
"""Largest upstream status line plus headers accepted."""
LINGER = 1.0
"""Seconds a connection waits for the end of a message its reader is done with (:meth:`ClientResponse.close`)."""
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class TransportError(Exception):
    """Base class of every error raised by the HTTP client."""


class ConnectError(TransportError):
    pass


class ReadError(TransportError):
    pass


class TimeoutError_(TransportError):
    pass


class ProtocolError(TransportError):
    pass


class UpstreamResponse(Protocol):
    """What a transport's request returns: :class:`ClientResponse`, or a test double such as
    :class:`stellwerk.testing.ScriptedResponse`."""

    status: int
    headers: dict[str, str]

    async def read(self, timeout: float | None = None) -> bytes: ...

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes: ...

    def close(self, finished: bool = False) -> None: ...


class ResponseTooLarge(ProtocolError):
    """The upstream's answer is larger than the client's ``max_response_size``."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        what = f"of {size} bytes " if size is not None else ""
        super().__init__(f"upstream response body {what}exceeds the limit of {limit} bytes (server.max_response_size)")
        self.limit = limit


class Transport(Protocol):
    """What the router needs from an HTTP client (see :class:`HTTPClient`)."""

    async def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | bytes,
        body: bytes = b"",
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class Route(NamedTuple):
    """How to reach one origin: through which proxy (None: directly) and with which TLS context."""

    proxy: Proxy | None = None
    ssl: ssl.SSLContext | None = None
    """None: the client's default context (system CAs)."""


Router = Callable[[str, str, int], Route]
"""``(scheme, host, port)`` → the :class:`Route` to that origin."""


class _Exchange:
    """State of one request/response on a connection."""

    __slots__ = ("buffered", "chunks", "complete", "error", "got_bytes", "headers", "idle_until", "status", "waiter",
                 "watchdog", "whole")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.complete = False
        self.error: TransportError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.got_bytes = False
        self.idle_until = 0.0
        self.watchdog: asyncio.TimerHandle | None = None
        self.whole = False
        """Read whole (no flow control: bounded by ``max_response_size`` instead)."""

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Connection(asyncio.Protocol):
    __slots__ = ("closed", "exchange", "head_size", "headers_done", "idle_since", "lingering", "parser", "paused", "pool",
                 "reused", "transport")

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.headers_done = False
        self.reused = False
        self.closed = False
        self.idle_since = 0.0
        self.paused = False
        self.head_size = 0
        self.lingering: asyncio.TimerHandle | None = None
        """Set while the end of a message nobody reads any more is awaited (:meth:`linger`)."""

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        ex = self.exchange
        if ex is not None and not ex.complete:
            framed = "content-length" in ex.headers or "chunked" in ex.headers.get("transfer-encoding", "")
            if ex.error is not None:
                pass  # keep the first, more precise error (e.g. a ProtocolError that caused the abort)
            elif self.headers_done and not framed:
                ex.complete = True  # body delimited by connection close
            else:
                ex.error = ReadError(f"upstream closed the connection{': ' + str(exc) if exc else ''}")
            ex.wake()

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            # Bytes nobody asked for: the connection is not reusable.
            self.abort()
            return
        ex.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            if ex.error is None:
                ex.error = ProtocolError(f"malformed HTTP response from upstream: {e}")
            ex.wake()
            self.abort()
            return
        if not self.headers_done and self.exchange is ex and not self.closed:
            self.head_size += len(data)
            if self.head_size > MAX_HEAD_SIZE:
                self._fail(ex, ProtocolError(f"upstream response headers exceed {MAX_HEAD_SIZE} bytes"))

    # -- httptools callbacks ----------------------------------------------
    def on_status(self, status: bytes) -> None:
        pass

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.exchange
        assert ex is not None
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEAD_SIZE:
            self._fail(ex, ProtocolError(f"upstream response headers exceed {MAX_HEAD_SIZE} bytes"))
            raise httptools.HttpParserError("headers too large")
        ex.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        ex = self.exchange
        assert ex is not None
        ex.status = self.parser.get_status_code()
        self.head_size = 0
        length = ex.headers.get("content-length")
        limit = self.pool.max_response_size
        if length is not None and length.isdigit() and int(length) > limit:
            # Fail now rather than after downloading what would be refused anyway.
            self._fail(ex, ResponseTooLarge(limit, int(length)))
            raise httptools.HttpParserError("response too large")
        self.headers_done = True
        ex.wake()

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        assert ex is not None
        if self.lingering is not None:  # more than the end of the message: not worth waiting for
            self._fail(ex, ProtocolError("body after the end the reader expected"))
            raise httptools.HttpParserError("body after the expected end")
        ex.chunks.append(body)
        ex.buffered += len(body)
        if ex.buffered > self.pool.max_response_size:
            self._fail(ex, ResponseTooLarge(self.pool.max_response_size))
            raise httptools.HttpParserError("response too large")
        if ex.buffered > _HIGH_WATER and not ex.whole and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if not ex.whole:
            ex.wake()  # a whole read waits for the end only

    def on_message_complete(self) -> None:
        ex = self.exchange
        assert ex is not None
        if self.lingering is not None:
            self.lingering.cancel()
            self.lingering = None
        ex.complete = True
        self.exchange = None
        self.headers_done = False
        self.head_size = 0
        ex.wake()
        if self.parser.should_keep_alive() and not self.closed:
            self.pool.release(self)
        else:
            self.abort()

    # -- helpers ------------------------------------------------------------
    def _fail(self, ex: _Exchange, error: TransportError) -> None:
        if ex.error is None:
            ex.error = error
        ex.chunks.clear()
        ex.buffered = 0
        ex.wake()
        self.abort()

    def linger(self, ex: _Exchange) -> None:
        """The reader has all it wants of ``ex`` but the message has not ended (a stream's last event came, the
        chunked body's last chunk is on its way): wait ``LINGER`` seconds for that end and then go back to the
        pool, rather than close the connection; any further body, or no end in time, closes it."""
        if self.closed or self.transport is None or ex.error is not None or self.exchange is not ex:
            self.abort()
            return
        ex.chunks.clear()
        ex.buffered = 0
        self.read_whole(ex)  # reading resumes if flow control had paused it
        self.lingering = self.pool.loop.call_later(LINGER, self._linger_over, ex)

    def _linger_over(self, ex: _Exchange) -> None:
        self.lingering = None
        if not self.closed and self.exchange is ex:
            self.abort()

    def read_whole(self, ex: _Exchange) -> None:
        """The body is about to be read whole: stop flow control (the size limit bounds it instead)."""
        ex.whole = True
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def consumed(self, ex: _Exchange, size: int) -> None:
        ex.buffered = max(0, ex.buffered - size)
        if self.paused and ex.buffered < _HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        self.pool.discard(self)
        if self.transport is not None:
            self.transport.abort()


class ClientResponse:
    """An upstream response. Read the body with :meth:`read` or iterate :meth:`iter_chunks`.

    A response whose body is not read to the end must be closed with
    :meth:`close` (it aborts the connection, which cancels the upstream work).
    """

    __slots__ = ("_conn", "_ex", "_loop", "headers", "status")

    def __init__(self, ex: _Exchange, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        self.status = ex.status
        self.headers = ex.headers
        self._ex = ex
        self._conn = conn
        self._loop = loop

    async def read(self, timeout: float | None = None) -> bytes:
        ex = self._ex
        deadline = None if timeout is None else self._loop.time() + timeout
        if not ex.whole:
            self._conn.read_whole(ex)
        while not ex.complete:
            if ex.error is not None:
                raise ex.error
            await _wait(ex, self._loop, deadline, self._conn)
        if ex.error is not None:
            raise ex.error
        chunks = ex.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        return body

    def iter_chunks(self, idle_timeout: float | None = None) -> AsyncIterator[bytes]:
        """Yield body chunks as they arrive; raise TimeoutError_ after ``idle_timeout`` of silence."""
        return _Chunks(self._ex, self._conn, self._loop, idle_timeout)

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes:
        """The body bytes received since the last call (waiting for some); ``b""`` at the end.

        Raises TimeoutError_ after ``idle_timeout`` seconds without a byte. Cheaper
        than :meth:`iter_chunks` on hot paths: no generator to resume, and one
        lazily re-armed watchdog timer per response instead of a timer per chunk.
        """
        ex = self._ex
        while True:
            chunks = ex.chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self._conn.consumed(ex, len(data))
                return data
            if ex.error is not None:
                self._disarm()
                raise ex.error
            if ex.complete:
                self._disarm()
                return b""
            loop = self._loop
            waiter = ex.waiter = loop.create_future()
            if idle_timeout is not None:
                ex.idle_until = loop.time() + idle_timeout
                if ex.watchdog is None:
                    ex.watchdog = loop.call_at(ex.idle_until, self._watch)
            try:
                await waiter
            except BaseException:
                self._disarm()
                self._conn.abort()
                raise
            finally:
                ex.waiter = None

    def _watch(self) -> None:
        """The idle watchdog: fire if nothing arrived since the wait began, else re-arm."""
        ex = self._ex
        ex.watchdog = None
        waiter = ex.waiter
        if waiter is None or waiter.done():
            return
        if self._loop.time() < ex.idle_until:
            ex.watchdog = self._loop.call_at(ex.idle_until, self._watch)
            return
        waiter.set_exception(TimeoutError_("upstream went silent for longer than the idle timeout"))

    def _disarm(self) -> None:
        if self._ex.watchdog is not None:
            self._ex.watchdog.cancel()
            self._ex.watchdog = None

    def close(self, finished: bool = False) -> None:
        """Done with the response. Unless it was read to its end, the connection is closed, which cancels the
        upstream's work; with ``finished`` (the reader has everything it needs, say a stream's last event)
        the connection waits briefly for the end of the message instead and goes back to the pool."""
        self._disarm()
        if not self._ex.complete:
            if finished:
                self._conn.linger(self._ex)
            else:
                self._conn.abort()


class _Chunks(GeneratorLike[bytes]):
    """:meth:`ClientResponse.iter_chunks` (see :mod:`stellwerk.generator_like`): the connection is aborted when the
    iteration stops before the end of the body."""

    def __init__(self, ex: _Exchange, conn: _Connection, loop: asyncio.AbstractEventLoop,
                 idle_timeout: float | None) -> None:
        super().__init__()
        self._ex = ex
        self._conn = conn
        self._loop = loop
        self._idle_timeout = idle_timeout

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        self._started = True
        ex = self._ex
        conn = self._conn
        try:
            while True:
                if ex.chunks:
                    chunk = ex.chunks.popleft()
                    conn.consumed(ex, len(chunk))
                    return chunk
                if ex.error is not None:
                    raise ex.error
                if ex.complete:
                    break
                deadline = None if self._idle_timeout is None else self._loop.time() + self._idle_timeout
                await _wait(ex, self._loop, deadline, conn)
        except BaseException:
            self._stop()
            raise
        self._over = True
        raise StopAsyncIteration

    def _abandon(self) -> None:
        if not self._ex.complete:
            self._conn.abort()


async def _wait(ex: _Exchange, loop: asyncio.AbstractEventLoop, deadline: float | None, conn: _Connection) -> None:
    waiter = ex.waiter = loop.create_future()
    timer = None
    if deadline is not None:
        timer = loop.call_at(deadline, _expire, waiter)
    try:
        await waiter
    except asyncio.CancelledError:
        conn.abort()
        raise
    except TimeoutError_:
        conn.abort()
        raise
    finally:
        ex.waiter = None
        if timer is not None:
            timer.cancel()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError_("upstream did not answer before the deadline"))


def _idempotent(method: str, headers: bytes) -> bool:
    """Whether sending the request again is harmless (a chat completion the upstream may have started
    on is not: the router's attempt loop decides about those, counted and budgeted)."""
    return method in _IDEMPOTENT or b"idempotency-key:" in headers.lower()


class _Tunnel(asyncio.Protocol):
    """The proxy's answer to ``CONNECT`` (bounded); after it, TLS takes the connection over."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.head += data
        if self.done.done():
            return
        if b"\r\n\r\n" in self.head:
            self.done.set_result(None)
        elif len(self.head) > 16384:
            self.done.set_exception(ConnectError("the proxy's answer to CONNECT is too long"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectError("the proxy closed the connection during CONNECT"))

    async def established(self, authority: str) -> None:
        await self.done
        status_line = bytes(self.head.split(b"\r\n", 1)[0])
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].startswith(b"2"):
            shown = status_line[:100].decode("latin-1", "replace")
            raise ConnectError(f"the proxy refused CONNECT {authority}: {shown}")
        if not self.head.endswith(b"\r\n\r\n"):
            raise ConnectError("the proxy sent data before the TLS handshake")


class _Pool:
    """Idle connections to one origin (scheme, host, port)."""

    __slots__ = ("host", "host_header", "idle", "keepalive_expiry", "loop", "max_idle", "max_response_size", "port", "proxy",
                 "ssl")

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, client: HTTPClient, host_header: str,
                 proxy: Proxy | None = None) -> None:
        self.idle: collections.deque[_Connection] = collections.deque()
        self.host = host
        self.port = port
        self.ssl = tls
        self.proxy = proxy
        self.max_idle = client.max_idle_per_host
        self.keepalive_expiry = client.keepalive_expiry
        self.max_response_size = client.max_response_size
        self.loop = asyncio.get_running_loop()
        self.host_header = host_header

    def acquire(self) -> _Connection | None:
        now = self.loop.time()
        while self.idle:
            conn = self.idle.pop()  # most recently used first: most likely still open
            if conn.closed or conn.transport is None or conn.transport.is_closing():
                continue
            if now - conn.idle_since > self.keepalive_expiry:
                conn.abort()
                continue
            conn.reused = True
            return conn
        return None

    async def connect(self, timeout: float | None) -> _Connection:
        via = f" through the proxy {self.proxy.host}:{self.proxy.port}" if self.proxy is not None else ""
        try:
            async with asyncio.timeout(timeout):
                return await self._open()
        except TimeoutError:
            raise ConnectError(f"connect to {self.host}:{self.port}{via} timed out after {timeout}s") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}{via}: {e.strerror or e}") from None

    async def _open(self) -> _Connection:
        proxy = self.proxy
        if proxy is None:
            _, conn = await self.loop.create_connection(
                lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
            return conn
        if self.ssl is None:  # plain http through a proxy: absolute-form requests on a connection to it
            _, conn = await self.loop.create_connection(lambda: _Connection(self), proxy.host, proxy.port)
            return conn
        raw, tunnel = await self.loop.create_connection(_Tunnel, proxy.host, proxy.port)
        try:
            authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            auth = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            raw.write(f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{auth}\r\n".encode("latin-1"))
            await tunnel.established(authority)
            conn = _Connection(self)
            tls = await self.loop.start_tls(raw, conn, self.ssl, server_hostname=self.host)
        except BaseException:
            raw.abort()
            raise
        if tls is None:  # pragma: no cover - only for transports without TLS support
            raise ConnectError("the event loop cannot start TLS on a proxy tunnel")
        conn.connection_made(tls)
        return conn

    def release(self, conn: _Connection) -> None:
        conn.idle_since = self.loop.time()
        if len(self.idle) >= self.max_idle:
            conn.abort()
            return
        self.idle.append(conn)

    def discard(self, conn: _Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().abort()


class _Target:
    __slots__ = ("host", "host_header", "path", "pool_key", "port", "request_line_tail", "route", "tls")

    def __init__(self, url: str, user_agent: bytes, router: Router | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectError(f"unsupported URL {url!r}: expected http:// or https://")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.route = router(parts.scheme, self.host, self.port) if router is not None else Route()
        default = 443 if self.tls else 80
        self.host_header = self.host if self.port == default else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            self.host_header = f"[{self.host}]" if self.port == default else f"[{self.host}]:{self.port}"
        path = parts.path or "/"
        self.path = f"{path}?{parts.query}" if parts.query else path
        self.pool_key = (parts.scheme, self.host, self.port)
        proxy = self.route.proxy
        target = self.path
        if proxy is not None and not self.tls:  # absolute-form for a proxy; https goes through a tunnel
            target = f"http://{self.host_header}{self.path}"
        self.request_line_tail = b"%s HTTP/1.1\r\nhost: %s\r\nuser-agent: %s" % (
            target.encode("latin-1"), self.host_header.encode("latin-1"), user_agent)
        if proxy is not None and not self.tls and proxy.authorization:
            self.request_line_tail += b"\r\nproxy-authorization: %s" % proxy.authorization.encode("latin-1")


class HTTPClient:
    """Pooled HTTP/1.1 client. One instance per process; cheap to share."""

    def __init__(
        self,
        *,
        max_idle_per_host: int = 256,
        keepalive_expiry: float = 4.0,
        max_response_size: int = 64 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "stellwerk",
        router: Router | None = None,
    ) -> None:
        """``router`` chooses a proxy and a TLS context per origin (default: direct, system CAs)."""
        self.max_idle_per_host = max_idle_per_host
        self._router = router
        self.keepalive_expiry = keepalive_expiry
        self.max_response_size = max_response_size
        self._ssl_context = ssl_context
        self._pools: dict[tuple[str, str, int], _Pool] = {}
        self._targets: dict[str, _Target] = {}
        self._ua = user_agent.encode("latin-1")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _pool_for(self, target: _Target) -> _Pool:
        pool = self._pools.get(target.pool_key)
        if pool is None:
            tls = (target.route.ssl or self._tls()) if target.tls else None
            pool = _Pool(target.host, target.port, tls, self, target.host_header, target.route.proxy)
            self._pools[target.pool_key] = pool
        return pool

    async def request(
        self,
        method: str,
        url: str,
        headers: Sequence[tuple[str, str]] | bytes,
        body: bytes = b"",
        *,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> ClientResponse:
        """Send a request and return once the response headers arrived.

        ``headers`` are name/value pairs, or bytes already encoded as ``name: value\r\n``
        lines (cheaper on a hot path that sends the same headers every time).
        ``timeout`` bounds connecting plus waiting for the response headers.
        """
        target = self._targets.get(url)
        if target is None:
            target = _Target(url, self._ua, self._router)
            if len(self._targets) < 4096:
                self._targets[url] = target
        pool = self._pool_for(target)
        loop = pool.loop
        deadline = None if timeout is None else loop.time() + timeout
        if not isinstance(headers, bytes):
            headers = b"".join(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)
        head = b"%s %s\r\ncontent-length: %d\r\n%s\r\n" % (
            method.encode("ascii"), target.request_line_tail, len(body), headers)
        payload = head + body if len(body) < 65536 else None
        for attempt in range(2):
            conn = pool.acquire() if attempt == 0 else None
            if conn is None:
                ct = connect_timeout if connect_timeout is not None else timeout
                if deadline is not None:
                    remaining = max(0.001, deadline - loop.time())
                    ct = remaining if ct is None else min(ct, remaining)
                conn = await pool.connect(ct)
            ex = _Exchange()
            conn.exchange = ex
            assert conn.transport is not None
            if payload is not None:
                conn.transport.write(payload)
            else:
                conn.transport.write(head)
                conn.transport.write(body)
            try:
                while not conn.headers_done and not ex.complete:
                    if ex.error is not None:
                        raise ex.error
                    await _wait(ex, loop, deadline, conn)
                if ex.error is not None and not conn.headers_done:
                    raise ex.error
            except ReadError:
                if conn.reused and not ex.got_bytes and _idempotent(method, headers):
                    continue  # stale keep-alive connection: try once on a fresh one
                raise
            return ClientResponse(ex, conn, loop)
        raise ReadError("upstream closed the connection")  # pragma: no cover - loop always returns or raises

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
