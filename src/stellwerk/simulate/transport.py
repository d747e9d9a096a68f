"""The simulated transport: the router's HTTP client replaced by in-process simulated providers.

``request`` finds the deployment's :class:`~.upstreams.Upstream` by the URL's origin,
checks its rpm, and hands the request to its simulated provider's handler. What the
provider does in time (TTFT, token pace, hangs) happens on the loop's virtual clock,
and the transport's deadlines are virtual too. Failures come out as the real client's
:class:`~stellwerk.http.client.TransportError` subclasses, so everything above the
transport runs unchanged:

    no answer before ``timeout``          -> TimeoutError_
    connection closed without an answer   -> ReadError
    stream cut, or no chunk within idle   -> ReadError, TimeoutError_
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import urlsplit

from stellwerk.http.client import ConnectError, ReadError, TimeoutError_, UpstreamResponse
from stellwerk.http.server import Request, Response, StreamingResponse

from .upstreams import Upstream

__all__ = ["SimTransport"]

_PARSED_HEADERS_KEPT = 64


class _Complete:
    """A complete answer."""

    __slots__ = ("_body", "headers", "status")

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.headers = _headers(response.headers, response.content_type)
        self._body = response.body

    async def read(self, timeout: float | None = None) -> bytes:
        return self._body

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes:
        body, self._body = self._body, b""
        return body

    def close(self, finished: bool = False) -> None:
        pass


class _Streamed:
    """A streamed answer: each chunk is the provider's next one, within ``idle_timeout`` of virtual time.

    A simulated stream never stalls: its chunks come ``gap`` seconds apart at most (the provider's pace). An idle
    timeout longer than that cannot fire, and is not armed (one timer less per chunk).
    """

    __slots__ = ("_chunks", "_gap", "headers", "status")

    def __init__(self, response: StreamingResponse, gap: float) -> None:
        self.status = response.status
        self.headers = _headers(response.headers, response.content_type)
        self._chunks: AsyncIterator[bytes] | None = response.chunks
        self._gap = gap

    async def read(self, timeout: float | None = None) -> bytes:
        parts = []
        while chunk := await self.next_chunk(timeout):
            parts.append(chunk)
        return b"".join(parts)

    async def next_chunk(self, idle_timeout: float | None = None) -> bytes:
        chunks = self._chunks
        if chunks is None:
            return b""
        try:
            if idle_timeout is None or idle_timeout > self._gap:
                return await _next_bytes(chunks)  # the next chunk comes within the gap: no timer needed
            async with asyncio.timeout(idle_timeout):
                return await _next_bytes(chunks)
        except StopAsyncIteration:
            self._chunks = None
            return b""
        except TimeoutError:
            self.close()
            raise TimeoutError_(f"no chunk within {idle_timeout:g}s") from None
        except ConnectionError as err:
            self._chunks = None
            raise ReadError(str(err)) from None

    def close(self, finished: bool = False) -> None:
        self._chunks = None  # the loop's async-generator hooks close the provider's stream


class SimTransport:
    """A :class:`~stellwerk.http.client.Transport` over simulated providers, by origin (``host:port``)."""

    def __init__(self, upstreams: Mapping[str, Upstream]) -> None:
        self._upstreams = upstreams
        self._parsed: dict[bytes, dict[str, str]] = {}

    async def request(self, method: str, url: str, headers: Sequence[tuple[str, str]] | bytes, body: bytes = b"", *,
                      timeout: float | None = None, connect_timeout: float | None = None) -> UpstreamResponse:
        parts = urlsplit(url)
        upstream = self._upstreams.get(parts.netloc)
        if upstream is None:
            raise ConnectError(f"no simulated provider at {parts.netloc}")
        limited = upstream.over_limit()
        if limited is not None:
            return _Complete(limited)
        request = Request(method, parts.path, parts.query, self._header_dict(headers), body)
        try:
            async with asyncio.timeout(timeout):
                answer = await upstream.sim.handle(request)
        except TimeoutError:
            raise TimeoutError_(f"no answer within {timeout:g}s") from None
        except ConnectionError as err:
            raise ReadError(str(err)) from None
        if isinstance(answer, Response):
            return _Complete(answer)
        return _Streamed(answer, upstream.chunk_gap)

    async def close(self) -> None:
        pass

    def _header_dict(self, headers: Sequence[tuple[str, str]] | bytes) -> dict[str, str]:
        if not isinstance(headers, bytes):
            return {k.lower(): v for k, v in headers}
        parsed = self._parsed.get(headers)  # the adapters send the same encoded block every time
        if parsed is None:
            if len(self._parsed) >= _PARSED_HEADERS_KEPT:
                self._parsed.clear()
            parsed = {}
            for line in headers.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name:
                    parsed[name.strip().lower()] = value.strip()
            self._parsed[headers] = parsed
        return parsed


async def _next_bytes(chunks: AsyncIterator[bytes]) -> bytes:
    """The next non-empty chunk (on the wire an empty one is no chunk; here b"" would end the stream)."""
    while True:
        chunk = await anext(chunks)
        if chunk:
            return chunk


def _headers(extra: list[tuple[str, str]] | None, content_type: str) -> dict[str, str]:
    headers = {"content-type": content_type}
    if extra:
        headers.update((k.lower(), v) for k, v in extra)
    return headers
