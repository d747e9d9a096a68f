"""The upstream's answer as the caller sees it: status, headers, and the body read whole or chunk by chunk.

:meth:`~stellwerk.http.client.HTTPClient.request` returns a :class:`ClientResponse` once the headers are in;
the body keeps arriving on its :class:`~stellwerk.http.connection.Connection`, into the
:class:`~stellwerk.http.connection.Exchange` that this response drains. Closing a response before the end of its
body aborts the connection (which cancels the upstream's work), or, when the reader has all it needs, lets the
connection wait for the end and go back to its pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from stellwerk.generator_like import GeneratorLike

from .connection import Connection, Exchange, wait
from .transport import TimeoutError_

__all__ = ["ClientResponse"]


class ClientResponse:
    """An upstream response. Read the body with :meth:`read` or iterate :meth:`iter_chunks`.

    A response whose body is not read to the end must be closed with
    :meth:`close` (it aborts the connection, which cancels the upstream work).
    """

    __slots__ = ("_conn", "_ex", "_loop", "headers", "status")

    def __init__(self, ex: Exchange, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
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
            await wait(ex, self._loop, deadline, self._conn)
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

    def __init__(self, ex: Exchange, conn: Connection, loop: asyncio.AbstractEventLoop,
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
                await wait(ex, self._loop, deadline, conn)
        except BaseException:
            self._stop()
            raise
        self._over = True
        raise StopAsyncIteration

    def _abandon(self) -> None:
        if not self._ex.complete:
            self._conn.abort()

