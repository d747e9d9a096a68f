"""What the HTTP server hands to a handler and takes back: requests, responses, and their wire heads."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Final

__all__ = [
    "ErrorBodyFactory",
    "Handler",
    "InterruptFactory",
    "Request",
    "Response",
    "StreamingResponse",
    "encode_head",
    "encode_response",
    "error_body_factory",
    "head_pairs",
    "head_parts",
    "header_name",
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
    """A complete response. ``headers`` are extra headers besides content-type/length; ``head`` more of them,
    already rendered as wire text (see :func:`encode_head`), sent after ``headers``."""

    __slots__ = ("body", "content_type", "head", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "application/json",
        head: str = "",
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.content_type = content_type
        self.head = head

    def header_pairs(self) -> list[tuple[str, str]]:
        """Every extra header as a pair: ``headers``, then those of ``head``."""
        return _pairs(self.headers, self.head)


class StreamingResponse:
    """A response whose body is produced by an async iterator of byte chunks.

    Sent with ``Transfer-Encoding: chunked``. If the iterator raises after the
    headers went out, the connection is closed without the terminating chunk,
    so the client sees an incomplete body rather than a silently short one.
    A stream the server itself has to end (shutdown grace exceeded) gets the
    server's *interrupted* event as its last chunk, then the terminating chunk.
    """

    __slots__ = ("chunks", "content_type", "head", "headers", "status")

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
        content_type: str = "text/event-stream",
        head: str = "",
    ) -> None:
        self.status = status
        self.chunks = chunks
        self.headers = headers
        self.content_type = content_type
        self.head = head

    def header_pairs(self) -> list[tuple[str, str]]:
        """Every extra header as a pair: ``headers``, then those of ``head``."""
        return _pairs(self.headers, self.head)


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


_STATUS_LINES: Final[dict[str, dict[int, bytes]]] = {}
"""Status line and content-type header, encoded once per content type and status."""
_NAMES: Final[dict[bytes, str]] = {}
"""Received header names (bytes) to their lower-case text (:func:`header_name`)."""
_MAX_NAMES: Final = 1024
_PREFIXES: Final[dict[str, str]] = {}
"""``\\r\\n<name>: `` by header name (names come from the gateway's code, not from clients; bounded anyway)."""


def _status_line(status: int, content_type: str) -> bytes:
    lines = _STATUS_LINES.get(content_type)
    if lines is None:
        if len(_STATUS_LINES) > 64:
            _STATUS_LINES.clear()
        lines = _STATUS_LINES[content_type] = {}
    line = lines.get(status)
    if line is None:
        line = lines[status] = b"HTTP/1.1 %d %s\r\ncontent-type: %s" % (
            status, _REASONS.get(status, b"Unknown"), content_type.encode("latin-1"))
    return line


def encode_head(status: int, content_type: str, extra: list[tuple[str, str]] | None, keep_alive: bool,
                head: str = "") -> bytes:
    """Status line and headers, without the final CRLF (the caller adds framing headers): :func:`head_parts`
    joined."""
    return b"".join(head_parts(status, content_type, extra, keep_alive, head))


def encode_response(status: int, content_type: str, extra: list[tuple[str, str]] | None, keep_alive: bool,
                    body: bytes, head: str = "") -> bytes:
    """A whole response with its body: :func:`head_parts`, ``content-length`` and ``body``, joined once."""
    parts = head_parts(status, content_type, extra, keep_alive, head)
    parts.append(b"\r\ncontent-length: %d\r\n\r\n" % len(body))
    parts.append(body)
    return b"".join(parts)


def head_parts(status: int, content_type: str, extra: list[tuple[str, str]] | None, keep_alive: bool,
               head: str = "") -> list[bytes]:
    """The pieces of :func:`encode_head`, for a caller that appends framing headers (and a body) and joins the
    whole message once, as :func:`encode_response` does: one allocation of its size, not a bytearray grown and
    copied piece by piece. The status line with its content type comes encoded from a small cache; the extra
    headers are encoded in one go (an encode costs about as much as the formatting of a header), each as its
    name's cached ``\\r\\n<name>: `` and its value.

    ``head`` is more headers already rendered as wire text, ``\\r\\n<name>: <value>`` each, written as it is: a
    block of headers whose values change on every answer (``x-ratelimit-*``) is built in one string by the code
    that knows them, names lower-case and values printable ASCII, instead of being handled pair by pair."""
    parts = [_status_line(status, content_type)]
    if extra:
        pieces: list[str] = []
        prefixes = _PREFIXES
        for name, value in extra:  # one join of the pieces: cheaper than formatting each line
            prefix = prefixes.get(name)
            if prefix is None:
                if len(prefixes) > 512:
                    prefixes.clear()
                prefix = prefixes[name] = f"\r\n{name}: "
            pieces.append(prefix)
            pieces.append(value)
        if head:
            pieces.append(head)
        parts.append("".join(pieces).encode("latin-1"))
    elif head:
        parts.append(head.encode("latin-1"))
    if not keep_alive:
        parts.append(b"\r\nconnection: close")
    return parts


def _pairs(headers: list[tuple[str, str]] | None, head: str) -> list[tuple[str, str]]:
    if not head:
        return headers if headers is not None else []
    return [*(headers or ()), *head_pairs(head)]


def header_name(raw: bytes) -> str:
    """A header name as received (both the server's and the client's parser) as lower-case text. Names are
    remembered by their bytes: a message's names are mostly the ones every message sends, and a lookup costs
    less than a decode and ``lower()`` (~250 instructions per header). The names come from the other side, so
    at most :data:`_MAX_NAMES` are remembered."""
    name = _NAMES.get(raw)
    if name is None:
        name = sys.intern(raw.decode("latin-1").lower())  # so a lookup by a literal name matches by identity
        if len(_NAMES) >= _MAX_NAMES:
            _NAMES.clear()
        _NAMES[raw] = name
    return name


def head_pairs(head: str) -> list[tuple[str, str]]:
    """The headers of wire text rendered for :func:`encode_head` (``\\r\\n<name>: <value>`` each), as pairs."""
    pairs: list[tuple[str, str]] = []
    for line in head.split("\r\n"):
        if line:
            name, _, value = line.partition(": ")
            pairs.append((name, value))
    return pairs
