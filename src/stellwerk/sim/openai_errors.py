"""OpenAI error bodies: ``{"error": {"message", "type", "param", "code"}}`` with the real service's wording.

Statuses and codes as OpenAI sends them: 400 ``invalid_request_error`` (with ``code``
``context_length_exceeded`` / ``content_policy_violation`` / parameter codes),
401 ``invalid_api_key``, 404 ``model_not_found``, 429 ``rate_limit_exceeded`` (with
``Retry-After`` and ``x-ratelimit-*`` headers), 500 ``server_error``, 502
``cf_bad_gateway``, 503 overloaded (``server_error``), 504 ``cf_gateway_timeout``. A stream
that fails after it started ends with ``data: {"error": {...}}`` (the SDK raises ``APIError``).
"""

from __future__ import annotations

from typing import Final

import orjson

from stellwerk.http.server import Response
from stellwerk.sim import protocol

__all__ = [
    "OpenAIErrors",
    "WireError",
    "content_policy_error",
    "context_length_error",
    "error_body",
    "invalid_api_key",
    "invalid_url",
    "model_not_found",
    "rate_limit_error",
    "server_error",
]


class WireError(protocol.WireError):
    """A request the wire layer rejects; carries an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None, code: str | None = None):
        super().__init__(status, error_body(message, type_, param, code))
        self.message = message
        self.type = type_
        self.param = param
        self.code = code


def error_body(message: str, type_: str, param: str | None = None, code: str | int | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


_RATE_LIMIT_RPM: Final = 500

_SERVER_ERRORS: Final[dict[int, tuple[str, str, int | None]]] = {
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "cf_bad_gateway", 502),
    503: (
        "That model is currently overloaded with other requests. You can retry your request, or contact us "
        "through our help center at help.openai.com if the error persists.",
        "server_error",
        None,
    ),
    504: ("Gateway timeout.", "cf_gateway_timeout", 504),
}


def server_error(status: int) -> bytes:
    """The body OpenAI sends with an upstream failure of ``status`` (other 4xx/5xx get a generic message)."""
    known = _SERVER_ERRORS.get(status)
    if known is not None:
        message, type_, code = known
        return error_body(message, type_, None, code)
    return error_body(protocol.simulated_error(status), "invalid_request_error" if status < 500 else "server_error")


def rate_limit_error(model: str, retry_after: float, limit: int) -> tuple[bytes, list[tuple[str, str]]]:
    """A 429 ``rate_limit_exceeded`` body with its ``Retry-After`` and ``x-ratelimit-*`` headers."""
    message = (
        f"Rate limit reached for {model} in organization org-sim on requests per min (RPM): Limit {limit}, "
        f"Used {limit}, Requested 1. Please try again in {retry_after:g}s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    headers = [
        ("retry-after", str(protocol.ceil_seconds(retry_after))),
        ("x-ratelimit-limit-requests", str(limit)),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-reset-requests", f"{retry_after:g}s"),
        ("x-ratelimit-limit-tokens", "2000000"),
        ("x-ratelimit-remaining-tokens", "2000000"),
        ("x-ratelimit-reset-tokens", "0s"),
    ]
    return error_body(message, "requests", None, "rate_limit_exceeded"), headers


def context_length_error(window: int, prompt_tokens: int) -> bytes:
    return error_body(
        f"This model's maximum context length is {window} tokens. However, your messages resulted in "
        f"{prompt_tokens} tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )


def content_policy_error() -> bytes:
    return error_body(
        "Your request was rejected as a result of our safety system. Your prompt may contain text that is not "
        "allowed by our safety system.",
        "invalid_request_error",
        None,
        "content_policy_violation",
    )


def invalid_api_key(supplied: str | None) -> bytes:
    """401; the supplied key is never echoed in full."""
    if not supplied:
        message = (
            "You didn't provide an API key. You need to provide your API key in an Authorization header using "
            "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    else:
        masked = f"{supplied[:3]}{'*' * 8}{supplied[-4:]}" if len(supplied) > 12 else "*" * 8
        message = f"Incorrect API key provided: {masked}."
    return error_body(message, "invalid_request_error", None, "invalid_api_key")


def model_not_found(model: str) -> bytes:
    return error_body(
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
    )


def invalid_url(method: str, path: str) -> bytes:
    return error_body(f"Invalid URL ({method} {path})", "invalid_request_error")


def stream_error_event(status: int) -> bytes:
    """The SSE event OpenAI sends when a stream fails after it started: ``data: {"error": {...}}``."""
    return b"data: " + server_error(status if status >= 500 else 500) + b"\n\n"


class OpenAIErrors:
    """:class:`~stellwerk.sim.protocol.ErrorShapes` for OpenAI."""

    __slots__ = ()

    def not_found(self, method: str, path: str) -> Response:
        return Response(404, invalid_url(method, path))

    def model_not_found(self, model: str) -> Response:
        return Response(404, model_not_found(model))

    def rate_limited(self, model: str, retry_after: float) -> Response:
        body, headers = rate_limit_error(model, retry_after, _RATE_LIMIT_RPM)
        return Response(429, body, headers)

    def server_error(self, status: int) -> Response:
        return Response(status, server_error(status))

    def context_too_long(self, window: int, prompt_tokens: int) -> Response:
        return Response(400, context_length_error(window, prompt_tokens))

    def content_blocked(self) -> Response | None:
        return Response(400, content_policy_error())
