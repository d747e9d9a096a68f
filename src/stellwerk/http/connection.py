"""One upstream connection: the asyncio protocol that parses each answer into an :class:`Exchange`.

:class:`~stellwerk.http.client.HTTPClient` puts an :class:`Exchange` on a :class:`Connection` for each request
and writes the request to its transport; the connection's httptools callbacks fill the exchange (status,
headers, body chunks, the end or an error) and wake whoever waits on it (:func:`wait`): the client until the
headers are in, then the :class:`~stellwerk.http.response.ClientResponse` that reads the body. The limits are
enforced here: the response head (``MAX_HEAD_SIZE``), the body (the pool's ``max_response_size``) and, for a
streamed body, flow control (reading pauses above 1 MiB buffered unread). At the end of a message the
connection goes back to its :class:`~stellwerk.http.pool.Pool`; on any doubt it is aborted.
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

import httptools

from .messages import header_name
from .transport import ProtocolError, ReadError, ResponseTooLarge, TimeoutError_, TransportError

if TYPE_CHECKING:
    from .pool import Pool

__all__ = ["LINGER", "MAX_HEAD_SIZE", "Connection", "Exchange", "wait"]

_HIGH_WATER = 1 << 20  # pause reading from a streamed upstream answer above 1 MiB buffered
MAX_HEAD_SIZE = 64 * 1024
"""Largest upstream status line plus headers accepted."""
LINGER = 1.0
"""Seconds a connection waits for the end of a message its reader is done with
(:meth:`~stellwerk.http.response.ClientResponse.close`)."""


class Exchange:
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


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection to one origin, one exchange at a time; its :class:`Pool` keeps it idle."""

    __slots__ = ("closed", "exchange", "head_fields", "head_size", "headers_done", "idle_since", "lingering", "parser",
                 "paused", "pool", "reused", "transport")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.headers_done = False
        self.reused = False
        self.closed = False
        self.idle_since = 0.0
        self.paused = False
        self.head_size = 0
        """Bytes of the reads that ended with the response head still unfinished (a head that never ends)."""
        self.head_fields = 0
        """Bytes of the header fields parsed so far (a head that ends, but within one read); each is held to
        ``MAX_HEAD_SIZE`` on its own: added up, a head that came in several reads counted twice."""
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
        self.head_fields += len(name) + len(value) + 4
        if self.head_fields > MAX_HEAD_SIZE:
            self._fail(ex, ProtocolError(f"upstream response headers exceed {MAX_HEAD_SIZE} bytes"))
            raise httptools.HttpParserError("headers too large")
        ex.headers[header_name(name)] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        ex = self.exchange
        assert ex is not None
        ex.status = self.parser.get_status_code()
        self.head_size = self.head_fields = 0
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
        self.head_size = self.head_fields = 0
        ex.wake()
        if self.parser.should_keep_alive() and not self.closed:
            self.pool.release(self)
        else:
            self.abort()

    # -- helpers ------------------------------------------------------------
    def _fail(self, ex: Exchange, error: TransportError) -> None:
        if ex.error is None:
            ex.error = error
        ex.chunks.clear()
        ex.buffered = 0
        ex.wake()
        self.abort()

    def linger(self, ex: Exchange) -> None:
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

    def _linger_over(self, ex: Exchange) -> None:
        self.lingering = None
        if not self.closed and self.exchange is ex:
            self.abort()

    def read_whole(self, ex: Exchange) -> None:
        """The body is about to be read whole: stop flow control (the size limit bounds it instead)."""
        ex.whole = True
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def consumed(self, ex: Exchange, size: int) -> None:
        ex.buffered = max(0, ex.buffered - size)
        if self.paused and ex.buffered < _HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        self.closed = True
        self.pool.discard(self)
        if self.transport is not None:
            self.transport.abort()


async def wait(ex: Exchange, loop: asyncio.AbstractEventLoop, deadline: float | None, conn: Connection) -> None:
    """Wait until ``conn`` wakes ``ex`` (headers, body, end or error). Past ``deadline`` raise
    :class:`TimeoutError_`; on that, or a cancellation, the connection is aborted."""
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

