"""The connections to one origin: idle keep-alive connections to reuse, and opening new ones.

:class:`~stellwerk.http.client.HTTPClient` keeps one :class:`Pool` per origin (scheme, host, port). A pool hands
out its most recently used idle :class:`~stellwerk.http.connection.Connection` that is still open and younger than
``keepalive_expiry``, else opens one: directly, to an http proxy (absolute-form requests), or through a proxy's
``CONNECT`` tunnel with TLS started on it. A connection comes back with :meth:`Pool.release` at the end of a
message, up to ``max_idle_per_host``.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import TYPE_CHECKING

from .connection import Connection
from .proxy import Proxy
from .transport import ConnectError

if TYPE_CHECKING:
    from .client import HTTPClient

__all__ = ["Pool"]


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


class Pool:
    """Idle connections to one origin (scheme, host, port)."""

    __slots__ = ("host", "host_header", "idle", "keepalive_expiry", "loop", "max_idle", "max_response_size", "port", "proxy",
                 "ssl")

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None, client: HTTPClient, host_header: str,
                 proxy: Proxy | None = None) -> None:
        self.idle: collections.deque[Connection] = collections.deque()
        self.host = host
        self.port = port
        self.ssl = tls
        self.proxy = proxy
        self.max_idle = client.max_idle_per_host
        self.keepalive_expiry = client.keepalive_expiry
        self.max_response_size = client.max_response_size
        self.loop = asyncio.get_running_loop()
        self.host_header = host_header

    def acquire(self) -> Connection | None:
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

    async def connect(self, timeout: float | None) -> Connection:
        via = f" through the proxy {self.proxy.host}:{self.proxy.port}" if self.proxy is not None else ""
        try:
            async with asyncio.timeout(timeout):
                return await self._open()
        except TimeoutError as timed_out:
            if timed_out.errno is None:  # the deadline given here (the OS's own connect timeout has an errno)
                raise ConnectError(f"connect to {self.host}:{self.port}{via} timed out after {timeout}s") from None
            raise ConnectError(f"cannot connect to {self.host}:{self.port}{via}: {timed_out.strerror}") from None
        except (OSError, ssl.SSLError) as e:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}{via}: {e.strerror or e}") from None

    async def _open(self) -> Connection:
        proxy = self.proxy
        if proxy is None:
            _, conn = await self.loop.create_connection(
                lambda: Connection(self), self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
            )
            return conn
        if self.ssl is None:  # plain http through a proxy: absolute-form requests on a connection to it
            _, conn = await self.loop.create_connection(lambda: Connection(self), proxy.host, proxy.port)
            return conn
        raw, tunnel = await self.loop.create_connection(_Tunnel, proxy.host, proxy.port)
        try:
            authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
            auth = f"proxy-authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
            raw.write(f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n{auth}\r\n".encode("latin-1"))
            await tunnel.established(authority)
            conn = Connection(self)
            tls = await self.loop.start_tls(raw, conn, self.ssl, server_hostname=self.host)
        except BaseException:
            raw.abort()
            raise
        if tls is None:  # pragma: no cover - only for transports without TLS support
            raise ConnectError("the event loop cannot start TLS on a proxy tunnel")
        conn.connection_made(tls)
        return conn

    def release(self, conn: Connection) -> None:
        conn.idle_since = self.loop.time()
        if len(self.idle) >= self.max_idle:
            conn.abort()
            return
        self.idle.append(conn)

    def discard(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)

    def close(self) -> None:
        while self.idle:
            self.idle.pop().abort()

