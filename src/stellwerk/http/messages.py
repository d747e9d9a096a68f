"""What the HTTP server hands to a handler and takes back: requests, responses, and their wire heads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import lru_cache
from http import HTTPStatus
from typing import Final

__all__ = [
    "ErrorBodyFactory",
    "Handler",
    "InterruptFactory",
    "Request",
    "Response",
    "StreamingResponse",
    "error_body_factory",
    "interrupted_event_factory",
]

_REASONS: Final = {s.value: s.phrase.encode() for s in HTTPStatus}


class Request:
    """One parsed HTTP request. Header names are lower-case; repeats are joined."""

    __slots__ = ("body", "client", "headers", "http_version", "method", "path", "query")

    def __init__(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        client: str = "",
        http_version: str = "1.1",
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client = client
        self.http_version = http_version


class Response:
    """A complete response. ``headers`` are extra headers besides content-type/length."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type


class StreamingResponse:
    """A response whose body is produced by an async iterator of byte chunks.

    Sent with ``Transfer-Encoding: chunked``. If the iterator raises after the
    headers went out, the connection is closed without the terminating chunk,
    so the client sees an incomplete body rather than a silently short one.
    A stream the server itself has to end (shutdown grace exceeded) gets the
    server's *interrupted* event as its last chunk, then the terminating chunk.
    """

    __slots__ = ("chunks", "content_type", "headers", "status")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "text/event-stream",
    ) -> None:
        self.status = status
        self.chunks = chunks
        self.headers = headers
        self.content_type = content_type


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]
ErrorBodyFactory = Callable[[int, str, str], bytes]
"""``(status, message, path)`` → body, for errors the HTTP layer answers itself (the path may be ``""``)."""
InterruptFactory = Callable[[str], bytes]
"""``path`` → the last event of a stream the server ends itself (at shutdown), in the API's shape."""


def error_body_factory(status: int, message: str, path: str = "") -> bytes:
    """Default body for errors raised by the HTTP layer itself (400/408/413/431/500/503)."""
    import orjson

    kind = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "code": status}})


def interrupted_event_factory(path: str) -> bytes:
    """Default last event of a stream cut at shutdown: an OpenAI-style SSE error event."""
    import orjson

    return b"data: %s\n\n" % orjson.dumps({"error": {
        "message": "The server is shutting down and ended this stream before it was complete.",
        "type": "server_error", "param": None, "code": "stream_interrupted"}})


@lru_cache(maxsize=256)
def _status_line(status: int, content_type: str) -> bytes:
    """The status line and the content-type header, encoded once per pair."""
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s" % (status, _REASONS.get(status, b"Unknown"),
                                                     content_type.encode("latin-1"))


def encode_head(status: int, content_type: str, extra: list[tuple[str, str]] | None, keep_alive: bool) -> bytearray:
    """Status line and headers, without the final CRLF (the caller adds framing headers). The status line with
    its content type comes encoded from a small cache; the extra headers are encoded in one go (an encode costs
    about as much as the formatting of a header)."""
    out = bytearray(_status_line(status, content_type))
    if extra:
        parts: list[str] = []
        for name, value in extra:  # one join of the pieces: cheaper than formatting each line
            parts.append("\r\n")
            parts.append(name)
            parts.append(": ")
            parts.append(value)
        out += "".join(parts).encode("latin-1")
    if not keep_alive:
        out += b"\r\nconnection: close"
    return out
