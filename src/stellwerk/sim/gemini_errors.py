"""Gemini error answers: ``{"error": {"code", "message", "status"[, "details"]}}`` (google.rpc.Status as JSON).

Statuses as the Gemini API (generativelanguage.googleapis.com) sends them: 400
``INVALID_ARGUMENT`` (the context window: ``The input token count (N) exceeds the
maximum number of tokens allowed (M).``; a bad key, with an ``ErrorInfo`` detail
``API_KEY_INVALID``), 403 ``PERMISSION_DENIED`` (no key), 404 ``NOT_FOUND``, 429
``RESOURCE_EXHAUSTED`` (with a ``google.rpc.RetryInfo`` detail whose ``retryDelay`` is a
Duration like ``"3s"``), 500 ``INTERNAL``, 503 ``UNAVAILABLE`` (overloaded), 504
``DEADLINE_EXCEEDED``. A stream that fails after it started ends with a chunk carrying
the same ``{"error": ...}`` body. The content policy is no error: the answer is 200 with
``promptFeedback.blockReason: "SAFETY"`` and no candidates.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from stellwerk.http.server import Response
from stellwerk.sim.protocol import WireError, simulated_error

__all__ = [
    "GeminiErrors",
    "api_key_invalid",
    "error_body",
    "invalid_argument",
    "permission_denied",
    "status_error",
    "stream_error_chunk",
]

_STATUS: Final[dict[int, tuple[str, str]]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission."),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Method not implemented."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip
_TYPE: Final = "type.googleapis.com/google.rpc."


def error_body(code: int, message: str, status: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return orjson.dumps({"error": error})


def status_error(code: int) -> bytes:
    """The body of a failure with HTTP status ``code`` (unknown 4xx: ``FAILED_PRECONDITION``, 5xx: ``INTERNAL``)."""
    status, message = _STATUS.get(code) or (("FAILED_PRECONDITION" if code < 500 else "INTERNAL"), simulated_error(code))
    return error_body(code, message, status)


def invalid_argument(message: str) -> WireError:
    return WireError(400, error_body(400, message, "INVALID_ARGUMENT"))


def api_key_invalid() -> Response:
    detail = {
        "@type": _TYPE + "ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    return Response(400, error_body(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT", [detail]))


def permission_denied() -> Response:
    message = (
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API."
    )
    return Response(403, error_body(403, message, "PERMISSION_DENIED"))


def stream_error_chunk(code: int) -> bytes:
    """The JSON of the chunk ending a stream that failed (a 5xx status)."""
    return status_error(code if code >= 500 else 500)


class GeminiErrors:
    """:class:`~stellwerk.sim.protocol.ErrorShapes` for Gemini."""

    __slots__ = ()

    def not_found(self, method: str, path: str) -> Response:
        return Response(404, status_error(404))

    def model_not_found(self, model: str) -> Response:
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods."
        )
        return Response(404, error_body(404, message, "NOT_FOUND"))

    def rate_limited(self, model: str, retry_after: float) -> Response:
        message = (
            "You exceeded your current quota, please check your plan and billing details. For more information on "
            f"this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in {retry_after:g}s."
        )
        details: list[dict[str, Any]] = [
            {
                "@type": _TYPE + "QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
                        "quotaDimensions": {"location": "global", "model": model},
                    }
                ],
            },
            {"@type": _TYPE + "RetryInfo", "retryDelay": f"{retry_after:g}s"},
        ]
        return Response(429, error_body(429, message, "RESOURCE_EXHAUSTED", details))

    def server_error(self, status: int) -> Response:
        return Response(status, status_error(status))

    def context_too_long(self, window: int, prompt_tokens: int) -> Response:
        message = f"The input token count ({prompt_tokens}) exceeds the maximum number of tokens allowed ({window})."
        return Response(400, error_body(400, message, "INVALID_ARGUMENT"))

    def content_blocked(self) -> Response | None:
        return None
