"""The contract between the router and an HTTP client: :class:`Transport`, what it returns, what it raises.

The router, the prober and the stream code depend on this module only; :class:`~stellwerk.http.client.HTTPClient`
implements it, and tests or the simulator swap in their own (:mod:`stellwerk.simulate.transport`). A transport
raises :class:`TransportError` subclasses only:

    TransportError
    ├── ConnectError      could not open a connection (refused, DNS, TLS, connect timeout)
    ├── ReadError         the connection broke while waiting for or reading the response
    ├── TimeoutError_     no response headers (or no next body chunk) before the deadline
    └── ProtocolError     the upstream spoke malformed HTTP or sent oversized headers
        └── ResponseTooLarge  a response body to be read whole exceeds ``max_response_size``

They become classified upstream errors at one boundary, :mod:`stellwerk.routing.send`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = [
    "ConnectError",
    "ProtocolError",
    "ReadError",
    "ResponseTooLarge",
    "TimeoutError_",
    "Transport",
    "TransportError",
    "UpstreamResponse",
]


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
    """What a transport's request returns: :class:`~stellwerk.http.response.ClientResponse`, or a test double
    such as :class:`stellwerk.testing.ScriptedResponse`."""

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
    """What the router needs from an HTTP client (see :class:`~stellwerk.http.client.HTTPClient`)."""

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
