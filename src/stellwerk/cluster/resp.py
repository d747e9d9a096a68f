"""A small Redis client: one pipelined connection speaking RESP2, on asyncio's protocol layer.

    conn = await connect("redis://127.0.0.1:6379/0", timeout=0.25)
    await conn.call("EVALSHA", sha, 1, "k", 5)      one command, one reply (replies come in order)
    conn.send("HINCRBY", "k", "f", 1)               fire and forget (its reply is read and dropped)
    sub = await connect(url, timeout, on_push=f)    a subscriber: every reply array goes to ``f``

Why not redis-py: the gateway spends one round trip per admission on its hot path, and this client does
it for a fraction of the CPU (see bench/RESULTS.md, "Redis and workers"). Every call has a deadline;
a reply error comes back as :class:`RespError`, a lost connection as :class:`ConnectionLost` (which
fails every call still waiting). Reconnecting is the caller's business (:mod:`.node`).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["ConnectionLost", "RespConnection", "RespError", "connect"]

Reply = Any
MAX_BUFFER = 64 * 1024 * 1024
"""Bytes of unparsed replies held at most (a larger reply closes the connection)."""


class RespError(Exception):
    """Redis answered with an error reply (``-ERR ...``)."""


class ConnectionLost(Exception):
    """The connection closed, failed or timed out."""


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, pos: int) -> tuple[Reply, int]:
    """One reply at ``pos``: the value and the position after it (``_Incomplete`` when more is needed)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos], bytes(buf[pos + 1:end])
    pos = end + 2
    if kind == 58:  # ':'
        return int(line), pos
    if kind == 36:  # '$'
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return bytes(buf[pos:pos + size]), pos + size + 2
    if kind == 42:  # '*'
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 43:  # '+'
        return line.decode(), pos
    if kind == 45:  # '-'
        return RespError(line.decode(errors="replace")), pos
    raise ConnectionLost(f"redis: unexpected reply byte {kind!r}")


def encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespConnection(asyncio.Protocol):
    """One connection. Replies are matched to calls in order; a subscriber hands them to ``on_push``."""

    def __init__(self, timeout: float, on_push: Callable[[Reply], None] | None = None) -> None:
        self.timeout = timeout
        self.on_push = on_push
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiting: collections.deque[asyncio.Future[Reply] | None] = collections.deque()
        self._buf = bytearray()
        self._out: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
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
        del buf[:pos]
        if len(buf) > MAX_BUFFER:
            self._fail(ConnectionLost("redis: reply too large"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionLost(f"redis: connection lost ({exc or 'closed'})"))

    # -- calls ------------------------------------------------------------------------------------
    def _deliver(self, reply: Reply) -> None:
        if self.on_push is not None and not self._waiting:
            self.on_push(reply)
            return
        fut = self._waiting.popleft() if self._waiting else None
        if fut is not None and not fut.done():
            if isinstance(reply, RespError):
                fut.set_exception(reply)
            else:
                fut.set_result(reply)

    def send(self, *args: Any) -> None:
        """A command whose reply is not wanted: written with the next call, or at the end of this turn of
        the event loop (commands of one turn share one write)."""
        if self.closed or self.transport is None:
            raise ConnectionLost("redis: not connected")
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(encode(args))
        self._waiting.append(None)

    def _flush(self) -> None:
        if self._out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    async def call(self, *args: Any) -> Reply:
        """One command's reply, within the connection's ``timeout`` (else the connection is closed)."""
        if self.closed or self.transport is None:
            raise ConnectionLost("redis: not connected")
        fut: asyncio.Future[Reply] = self._loop.create_future()
        self._out.append(encode(args))
        self._flush()
        self._waiting.append(fut)
        timer = self._loop.call_later(self.timeout, self._expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _expire(self, fut: asyncio.Future[Reply]) -> None:
        if not fut.done():
            self._fail(ConnectionLost(f"redis: no answer within {self.timeout}s"))

    def _fail(self, err: ConnectionLost) -> None:
        self.closed = True
        waiting, self._waiting = self._waiting, collections.deque()
        for fut in waiting:
            if fut is not None and not fut.done():
                fut.set_exception(err)
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
