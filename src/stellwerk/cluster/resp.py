"""A small Redis client: one pipelined connection speaking RESP2, on asyncio's protocol layer.

    conn = await connect("redis://127.0.0.1:6379/0", timeout=0.25)
    await conn.call("EVALSHA", sha, 1, "k", 5)      one command, one reply (replies come in order)
    conn.send("HINCRBY", "k", "f", 1)               fire and forget (written with the next call, or soon)
    sub = await connect(url, timeout, on_push=f)    a subscriber: every reply array goes to ``f``

Why not redis-py: the gateway spends one round trip per admission on its hot path, and this client does
it for a fraction of the CPU (see bench/RESULTS.md, "Redis and workers"). Every call has a deadline;
a reply error comes back as :class:`RespError`, a lost connection as :class:`ConnectionLost` (which
fails every call still waiting). Reconnecting is the caller's business (:mod:`.node`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ConnectionLost", "RespConnection", "RespError", "Waiter", "bulk", "connect", "encode"]

Reply = Any
FLUSH_DELAY = 0.05
"""Seconds a command sent without waiting may wait for a call to share its write."""
MAX_BUFFER = 64 * 1024 * 1024
"""Bytes of unparsed replies held at most (a larger reply closes the connection)."""


class RespError(Exception):
    """Redis answered with an error reply (``-ERR ...``)."""


class ConnectionLost(Exception):
    """The connection closed, failed or timed out."""


class _Incomplete(Exception):
    pass


Waiter = Callable[[Reply], None]
"""Takes one reply: a value, a :class:`RespError`, or the :class:`ConnectionLost` that ended the wait."""


def _parse(buf: bytes | bytearray, pos: int) -> tuple[Reply, int]:
    """One reply at ``pos``: the value and the position after it (``_Incomplete`` when more is needed)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == 58:  # ':'
        return int(buf[pos + 1:end]), end + 2
    if kind == 42:  # '*'
        count = int(buf[pos + 1:end])
        pos = end + 2
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            if pos >= len(buf):
                raise _Incomplete
            if buf[pos] == 58:  # an integer, inline (ADMIT's replies are integers only)
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    raise _Incomplete
                items.append(int(buf[pos + 1:end]))
                pos = end + 2
            else:
                item, pos = _parse(buf, pos)
                items.append(item)
        return items, pos
    line = bytes(buf[pos + 1:end])
    pos = end + 2
    if kind == 36:  # '$'
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos:pos + size]), pos + size + 2
    if kind == 43:  # '+'
        return line.decode(), pos
    if kind == 45:  # '-'
        return RespError(line.decode(errors="replace")), pos
    raise ConnectionLost(f"redis: unexpected reply byte {kind!r}")


def bulk(data: bytes) -> bytes:
    """``data`` as a RESP bulk string (a command's argument)."""
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(bulk(arg if isinstance(arg, bytes) else str(arg).encode()))
    return b"".join(parts)


def _settle(fut: asyncio.Future[Reply], reply: Reply) -> None:
    if not fut.done():
        if isinstance(reply, Exception):
            fut.set_exception(reply)
        else:
            fut.set_result(reply)


class RespConnection(asyncio.Protocol):
    """One connection. Replies are matched to waiters in order; a subscriber hands them to ``on_push``.

    Deadlines: one watchdog per connection, not a timer per command. It is armed at the oldest unanswered
    command's deadline (written + ``timeout``); when it fires with that command still unanswered, the
    connection is closed and every waiter gets :class:`ConnectionLost`.
    """

    def __init__(self, timeout: float, on_push: Callable[[Reply], None] | None = None) -> None:
        self.timeout = timeout
        self.on_push = on_push
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiting: collections.deque[Waiter | None] = collections.deque()
        self._written: collections.deque[float] = collections.deque()
        """Loop time at which each waiting command was queued (for the watchdog)."""
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._watchdog: asyncio.TimerHandle | None = None
        self._flusher: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        if data[:1] == b":" and not self._buf and data.find(b"\r\n") == len(data) - 2 and self._waiting:
            try:  # the common case: one integer (ADMIT's "all admitted")
                reply: Reply = int(data[1:-2])
            except ValueError as garbled:
                self._fail(ConnectionLost(str(garbled)))
                return
            self._deliver(reply)
            return
        buf: bytes | bytearray
        if self._buf:
            self._buf += data
            buf = self._buf
        else:
            buf = data  # the common case: whole replies, parsed without a copy
        pos = 0
        try:
            while pos < len(buf):
                try:
                    reply, pos = _parse(buf, pos)
                except _Incomplete:
                    break
                self._deliver(reply)
        except (ConnectionLost, ValueError) as err:
            self._fail(ConnectionLost(str(err)))
            return
        if buf is data:
            if pos < len(data):
                self._buf += data[pos:]
        else:
            del self._buf[:pos]
        if len(self._buf) > MAX_BUFFER:
            self._fail(ConnectionLost("redis: reply too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost(f"redis: connection lost ({exc or 'closed'})"))

    # -- commands ---------------------------------------------------------------------------------
    def _deliver(self, reply: Reply) -> None:
        if not self._waiting:
            if self.on_push is not None:
                self.on_push(reply)
            return
        waiter = self._waiting.popleft()
        self._written.popleft()
        if waiter is not None:
            waiter(reply)

    def write(self, command: bytes, waiter: Waiter | None) -> None:
        """Write an encoded command now (after any queued by :meth:`send`); ``waiter`` gets its reply."""
        if self.closed or self.transport is None:
            raise ConnectionLost("redis: not connected")
        out = self._out
        if out:
            out.append(command)
            command = b"".join(out)
            out.clear()
        self.transport.write(command)
        self._wait(waiter)

    def _wait(self, waiter: Waiter | None) -> None:
        self._waiting.append(waiter)
        self._written.append(self._loop.time())
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._written[0] + self.timeout, self._watch)

    def _watch(self) -> None:
        self._watchdog = None
        if not self._written:
            return
        due = self._written[0] + self.timeout
        if self._loop.time() >= due:
            self._fail(ConnectionLost(f"redis: no answer within {self.timeout}s"))
        else:
            self._watchdog = self._loop.call_at(due, self._watch)

    def send(self, *args: Any) -> None:
        """A command whose reply is not wanted: written with the next :meth:`write` or :meth:`call`, or after
        ``FLUSH_DELAY`` at the latest (one timer at a time, whatever the number of commands)."""
        if self.closed or self.transport is None:
            raise ConnectionLost("redis: not connected")
        if self._flusher is None:
            self._flusher = self._loop.call_later(FLUSH_DELAY, self._flush)
        self._out.append(encode(args))
        self._wait(None)

    def _flush(self) -> None:
        self._flusher = None
        if self._out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    async def call(self, *args: Any) -> Reply:
        """One command's reply, within the connection's ``timeout`` (else the connection is closed)."""
        fut: asyncio.Future[Reply] = self._loop.create_future()
        self.write(encode(args), functools.partial(_settle, fut))
        return await fut

    def _fail(self, err: ConnectionLost) -> None:
        self.closed = True
        for timer in (self._watchdog, self._flusher):
            if timer is not None:
                timer.cancel()
        self._watchdog = self._flusher = None
        waiting, self._waiting = self._waiting, collections.deque()
        self._written.clear()
        self._out.clear()
        for waiter in waiting:
            if waiter is not None:
                waiter(err)
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self._fail(ConnectionLost("redis: closed"))


async def connect(url: str, timeout: float, on_push: Callable[[Reply], None] | None = None) -> RespConnection:
    """A connection to ``redis://[:password@]host[:port][/db]`` or ``unix:///path[?db=N]``, authenticated and
    on its database; :class:`ConnectionLost` when that fails within ``timeout``."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    conn = RespConnection(timeout)
    try:
        if parts.scheme == "unix":
            await asyncio.wait_for(loop.create_unix_connection(lambda: conn, parts.path), timeout)
            db = parse_qs(parts.query).get("db", ["0"])[0]
        elif parts.scheme == "redis":
            await asyncio.wait_for(loop.create_connection(lambda: conn, parts.hostname or "127.0.0.1",
                                                          parts.port or 6379), timeout)
            db = parts.path.strip("/") or "0"
        else:
            raise ConnectionLost(f"redis: unsupported URL scheme '{parts.scheme}'")
        if parts.password:
            user = unquote(parts.username) if parts.username else None
            await conn.call("AUTH", *(() if user is None else (user,)), unquote(parts.password))
        if db != "0":
            await conn.call("SELECT", db)
    except (OSError, TimeoutError, RespError) as err:
        conn.close()
        raise ConnectionLost(f"redis: cannot connect: {err or type(err).__name__}") from None
    conn.on_push = on_push
    return conn
