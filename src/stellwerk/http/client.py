"""A small, fast HTTP/1.1 client with per-origin keep-alive pools.

The gateway's hot path makes one upstream request per client request, so the
client's cost per request matters as much as the server's. This client does
only what an LLM gateway needs: ``POST``/``GET`` with a byte body, a response
whose body is read whole or streamed chunk by chunk, TLS, keep-alive pooling,
and deadlines. It is injected into the router as a :class:`Transport`, so
tests and other transports can replace it.

It is built from one module per part; at run time each imports only those below it:

    client.py      HTTPClient: a URL to its origin's pool, the request written, the headers awaited
    pool.py        Pool: the idle connections to one origin; opening new ones (directly, via a proxy, CONNECT)
    response.py    ClientResponse: the body read whole or chunk by chunk; closing it
    connection.py  Connection: the protocol that parses an answer into an Exchange, within the limits
    proxy.py       Proxy: the outbound proxies, from the environment as curl reads it
    transport.py   the contract: Transport, UpstreamResponse, and the errors (all TransportError subclasses)

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

This module re-exports the contract (:mod:`stellwerk.http.transport`) and :class:`ClientResponse`, so
``from stellwerk.http.client import ...`` keeps working for every name in ``__all__``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from .connection import Exchange, wait
from .pool import Pool
from .proxy import Proxy
from .response import ClientResponse
from .transport import (
    ConnectError,
    ProtocolError,
    ReadError,
    ResponseTooLarge,
    TimeoutError_,
    Transport,
    TransportError,
    UpstreamResponse,
)

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

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class Route(NamedTuple):
    """How to reach one origin: through which proxy (None: directly) and with which TLS context."""

    proxy: Proxy | None = None
    ssl: ssl.SSLContext | None = None
    """None: the client's default context (system CAs)."""


Router = Callable[[str, str, int], Route]
"""``(scheme, host, port)`` → the :class:`Route` to that origin."""


def _idempotent(method: str, headers: bytes) -> bool:
    """Whether sending the request again is harmless (a chat completion the upstream may have started
    on is not: the router's attempt loop decides about those, counted and budgeted)."""
    return method in _IDEMPOTENT or b"idempotency-key:" in headers.lower()


class _Target:
    """A URL taken apart once (the client keeps them by URL): its origin, its route, and its request line's bytes."""

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
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._targets: dict[str, _Target] = {}
        self._ua = user_agent.encode("latin-1")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _pool_for(self, target: _Target) -> Pool:
        pool = self._pools.get(target.pool_key)
        if pool is None:
            tls = (target.route.ssl or self._tls()) if target.tls else None
            pool = Pool(target.host, target.port, tls, self, target.host_header, target.route.proxy)
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
            ex = Exchange()
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
                    await wait(ex, loop, deadline, conn)
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
