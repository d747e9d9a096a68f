"""Ollama error answers: ``{"error": "message"}`` with a status, worded as the Ollama server words them.

404 ``model "NAME" not found, try pulling it first``; 400 for bad requests; 500 when
the runner fails; 503 ``server busy, please try again.  maximum pending requests
exceeded`` when the queue is full (``error_statuses: [503]`` simulates that); 429 with
``Retry-After`` for the rate-limit outcome (as a hosted Ollama answers). A stream
that fails after it started ends with a ``{"error": ...}`` line. Ollama has no
context-window error for chat (it truncates) and no content filter; the sim answers
400 ``the input length exceeds the context length`` (the wording of ``/api/embed``
with ``truncate: false``) and 400 ``content policy violation (simulated)``.
"""

from __future__ import annotations

from typing import Final

import orjson

from stellwerk.http.server import Response
from stellwerk.sim.protocol import WireError, ceil_seconds, simulated_error

__all__ = ["OllamaErrors", "bad_request", "error_body", "stream_error_line"]

_MESSAGES: Final[dict[int, str]] = {
    500: "llama runner process has terminated: exit status 2",
    502: "an error was encountered while running the model: unexpected EOF",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


def bad_request(message: str) -> WireError:
    return WireError(400, error_body(message))


def _message(status: int) -> str:
    return _MESSAGES.get(status) or simulated_error(status)


def stream_error_line(status: int) -> bytes:
    """The NDJSON line ending a stream that failed."""
    return error_body(_message(status if status >= 500 else 500)) + b"\n"


class OllamaErrors:
    """:class:`~stellwerk.sim.protocol.ErrorShapes` for Ollama."""

    __slots__ = ()

    def not_found(self, method: str, path: str) -> Response:
        return Response(404, b"404 page not found", content_type="text/plain")

    def model_not_found(self, model: str) -> Response:
        return Response(404, error_body(f'model "{model}" not found, try pulling it first'))

    def rate_limited(self, model: str, retry_after: float) -> Response:
        headers = [("retry-after", str(ceil_seconds(retry_after)))]
        return Response(429, error_body("too many requests, please try again later"), headers)

    def server_error(self, status: int) -> Response:
        return Response(status, error_body(_message(status)))

    def context_too_long(self, window: int, prompt_tokens: int) -> Response:
        return Response(400, error_body("the input length exceeds the context length"))

    def content_blocked(self) -> Response | None:
        return Response(400, error_body("content policy violation (simulated)"))
