"""The simulated transport: the router's HTTP client replaced by in-process simulated providers.

``request`` finds the deployment's :class:`~.upstreams.Upstream` by the URL's origin,
checks its rpm, and hands the request to its simulated provider's handler. What the
provider does in time (TTFT, token pace, hangs) happens on the loop's virtual clock,
and the transport's deadlines are virtual too. Failures come out as the real client's
:class:`~stellwerk.http.transport.TransportError` subclasses, so everything above the
transport runs unchanged:

    no answer before ``timeout``          -> TimeoutError_
    connection closed without an answer   -> ReadError
    stream cut, or no chunk within idle   -> ReadError, TimeoutError_
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.http.transport import ConnectError, ReadError, TimeoutError_, UpstreamResponse

from .clock import VirtualLoop
from .upstreams import Upstream

__all__ = ["SimTransport"]

_PARSED_HEADERS_KEPT = 64


class _Complete:
    """A complete answer."""

    __slots__ = ("_body", "headers", "status")

    def __init__(self, response: Response) -> None:
        self.status = response.status
        self.headers = _headers(response.header_pairs(), response.content_type)
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
        self.headers = _headers(response.header_pairs(), response.content_type)
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
            if idle_timeout is None or idle_timeout > self._gap:  # the next chunk comes within the gap: no timer
                chunk = await anext(chunks)
                while not chunk:  # on the wire an empty chunk is no chunk; here b"" would end the stream
                    chunk = await anext(chunks)
                return chunk
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
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            _close_now(chunks)


class SimTransport:
    """A :class:`~stellwerk.http.transport.Transport` over simulated providers, by origin (``host:port``)."""

    def __init__(self, upstreams: Mapping[str, Upstream], loop: VirtualLoop) -> None:
        self._upstreams = upstreams
        self._loop = loop
        self._parsed: dict[bytes, dict[str, str]] = {}
        self._targets: dict[str, tuple[Upstream, str, str]] = {}

    def _target(self, url: str) -> tuple[Upstream, str, str]:
        """The upstream, path and query of ``url`` (kept: the adapters send to a few URLs per deployment)."""
        parts = urlsplit(url)
        upstream = self._upstreams.get(parts.netloc)
        if upstream is None:
            raise ConnectError(f"no simulated provider at {parts.netloc}")
        if len(self._targets) >= _PARSED_HEADERS_KEPT:
            self._targets.clear()
        target = self._targets[url] = (upstream, parts.path, parts.query)
        return target

    async def request(self, method: str, url: str, headers: Sequence[tuple[str, str]] | bytes, body: bytes = b"", *,
                      timeout: float | None = None, connect_timeout: float | None = None) -> UpstreamResponse:
        target = self._targets.get(url)
        if target is None:
            target = self._target(url)
        upstream, path, query = target
        limited = upstream.over_limit()
        if limited is not None:
            return _Complete(limited)
        request = Request(method, path, query, self._header_dict(headers), body)
        if timeout is None:
            deadline = None
        else:  # what asyncio.timeout does, on a timer without a handle (an answer in time disarms it)
            task = asyncio.current_task(self._loop)
            assert task is not None
            cancelling = task.cancelling()
            deadline = _Deadline(task)
            self._loop.at(self._loop.time() + timeout, deadline.expire)
        try:
            answer = await upstream.sim.handle(request)
        except asyncio.CancelledError:
            if deadline is not None and deadline.expired and deadline.task.uncancel() <= cancelling:
                raise TimeoutError_(f"no answer within {timeout:g}s") from None
            raise
        except ConnectionError as err:
            raise ReadError(str(err)) from None
        finally:
            if deadline is not None:
                deadline.answered = True
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


class _Deadline:
    """A request's timeout: cancels ``task`` when it expires, unless the answer came first (``answered``)."""

    __slots__ = ("answered", "expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.answered = False
        self.expired = False

    def expire(self) -> None:
        if not self.answered:
            self.expired = True
            self.task.cancel()


def _close_now(chunks: AsyncIterator[bytes]) -> None:
    """Close a provider's stream that was not read to its end, at once. A simulated stream holds nothing to
    clean up (its ``aclose`` finishes without waiting); left to the loop's async-generator hooks, each one
    would cost a task."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is None:
        return
    closing = aclose()
    try:
        closing.send(None)
    except StopIteration:
        return
    closing.close()  # it waited for something: give up on it (never the case for the simulated providers)


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
