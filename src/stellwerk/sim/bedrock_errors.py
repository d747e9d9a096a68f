"""Bedrock Runtime error answers: a status, an ``x-amzn-errortype`` header and ``{"message": ...}``.

Exception names and statuses from the Converse API model: 400 ``ValidationException``
(the context window: ``Input is too long for requested model.``; an unknown model:
``The provided model identifier is invalid.``), 403 ``AccessDeniedException``, 404
``ResourceNotFoundException``, 408 ``ModelTimeoutException``, 424 ``ModelErrorException``,
429 ``ThrottlingException``, 500 ``InternalServerException``, 503
``ServiceUnavailableException``. Credentials: 403 ``MissingAuthenticationTokenException``
(no ``Authorization``) or ``UnrecognizedClientException``. Mid-stream failures are
exception frames (see :mod:`stellwerk.sim.eventstream`) named by the stream's members:
``throttlingException``, ``serviceUnavailableException``, ``validationException``,
``internalServerException``, ``modelStreamErrorException``. Bedrock sends no
``Retry-After``. The content policy is no error: ``stopReason: "content_filtered"``.
"""

from __future__ import annotations

from typing import Final

import orjson

from stellwerk.http.server import Response
from stellwerk.sim.eventstream import exception_headers, frame
from stellwerk.sim.protocol import WireError, simulated_error

__all__ = ["BedrockErrors", "error", "stream_exception", "validation"]

_NAMESPACE: Final = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_KNOWN: Final[dict[int, tuple[str, str]]] = {
    400: ("ValidationException", "The request is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The specified resource was not found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The system encountered an unexpected error during processing. Try your request again."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error while processing the request."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_STREAM_NAMES: Final = {
    "ThrottlingException": "throttlingException",
    "ServiceUnavailableException": "serviceUnavailableException",
    "ValidationException": "validationException",
    "InternalServerException": "internalServerException",
}


def error(status: int, exception: str, message: str) -> Response:
    return Response(status, orjson.dumps({"message": message}), [("x-amzn-errortype", exception + _NAMESPACE)])


def validation(message: str) -> WireError:
    response = error(400, "ValidationException", message)
    return WireError(400, response.body, response.headers)


def _known(status: int) -> tuple[str, str]:
    known = _KNOWN.get(status)
    if known is not None:
        return known
    return ("ValidationException" if status < 500 else "InternalServerException"), simulated_error(status)


def stream_exception(status: int) -> bytes:
    """The exception frame ending a stream that failed with ``status``."""
    exception, message = _known(status)
    name = _STREAM_NAMES.get(exception, "modelStreamErrorException")
    return frame(exception_headers(name), orjson.dumps({"message": message}))


class BedrockErrors:
    """:class:`~stellwerk.sim.protocol.ErrorShapes` for Bedrock Runtime."""

    __slots__ = ()

    def not_found(self, method: str, path: str) -> Response:
        return error(404, "UnknownOperationException", "Unknown operation")

    def model_not_found(self, model: str) -> Response:
        return error(400, "ValidationException", "The provided model identifier is invalid.")

    def rate_limited(self, model: str, retry_after: float) -> Response:
        return error(429, *_known(429))

    def server_error(self, status: int) -> Response:
        return error(status, *_known(status))

    def context_too_long(self, window: int, prompt_tokens: int) -> Response:
        return error(400, "ValidationException", "Input is too long for requested model.")

    def content_blocked(self) -> Response | None:
        return None
