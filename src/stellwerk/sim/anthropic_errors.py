"""Anthropic error answers: ``{"type": "error", "error": {"type", "message"}}`` with the Messages API's wording.

Statuses and types as Anthropic sends them: 400 ``invalid_request_error`` (the context
window: ``prompt is too long: N tokens > M maximum``), 401 ``authentication_error``,
403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429
``rate_limit_error`` (with ``retry-after`` and ``anthropic-ratelimit-*`` headers), 500
``api_error``, 529 ``overloaded_error``; other 5xx are ``api_error``. A stream that
fails after it started ends with ``event: error`` carrying the same body. The content
policy is no error: the reply ends with ``stop_reason: "refusal"``.
"""

from __future__ import annotations

from typing import Final

import orjson

from stellwerk.http.server import Response
from stellwerk.sim.protocol import WireError, ceil_seconds, simulated_error

__all__ = ["AnthropicErrors", "error_body", "invalid_request", "stream_error_event"]

_RATE_LIMIT_RPM: Final = 50
_KNOWN: Final[dict[int, tuple[str, str]]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def error_body(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


def invalid_request(message: str) -> WireError:
    return WireError(400, error_body("invalid_request_error", message))


def _known(status: int) -> tuple[str, str]:
    known = _KNOWN.get(status)
    if known is not None:
        return known
    return ("invalid_request_error" if status < 500 else "api_error"), simulated_error(status)


def stream_error_event(status: int) -> bytes:
    """The ``event: error`` SSE event ending a stream that failed (overloaded for 529, else ``api_error``)."""
    type_, message = _known(status if status >= 500 else 500)
    return b"event: error\ndata: " + error_body(type_, message) + b"\n\n"


class AnthropicErrors:
    """:class:`~stellwerk.sim.protocol.ErrorShapes` for Anthropic."""

    __slots__ = ()

    def not_found(self, method: str, path: str) -> Response:
        return Response(404, error_body("not_found_error", f"Not found: {method} {path}"))

    def model_not_found(self, model: str) -> Response:
        return Response(404, error_body("not_found_error", f"model: {model}"))

    def rate_limited(self, model: str, retry_after: float) -> Response:
        message = (
            f"This request would exceed the rate limit for your organization (org-sim) of {_RATE_LIMIT_RPM} requests "
            f"per minute for {model}. Please try again in {retry_after:g}s."
        )
        headers = [
            ("retry-after", str(ceil_seconds(retry_after))),
            ("anthropic-ratelimit-requests-limit", str(_RATE_LIMIT_RPM)),
            ("anthropic-ratelimit-requests-remaining", "0"),
        ]
        return Response(429, error_body("rate_limit_error", message), headers)

    def server_error(self, status: int) -> Response:
        return Response(status, error_body(*_known(status)))

    def context_too_long(self, window: int, prompt_tokens: int) -> Response:
        message = f"prompt is too long: {prompt_tokens} tokens > {window} maximum"
        return Response(400, error_body("invalid_request_error", message))

    def content_blocked(self) -> Response | None:
        return None
