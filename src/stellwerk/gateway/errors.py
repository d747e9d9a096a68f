"""Errors as OpenAI-shaped HTTP answers: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import orjson

from stellwerk.errors import AllAttemptsFailedError, StellwerkError, UpstreamError
from stellwerk.http.server import Response
from stellwerk.pipeline import Call, Reply, is_result, merge_headers

__all__ = ["error_body", "error_response", "http_layer_error", "stream_interrupted_event"]


def error_body(status: int, message: str, error_type: str | None = None, code: str | int | None = None,
               param: str | None = None) -> bytes:
    if error_type is None:
        error_type = "invalid_request_error" if status < 500 else "server_error"
    return orjson.dumps({"error": {"message": message, "type": error_type, "param": param, "code": code}})


def http_layer_error(status: int, message: str, path: str = "") -> bytes:
    """Body for errors the HTTP layer answers itself (malformed HTTP, 413), in the shape of the API asked."""
    if path.rstrip("/").endswith(("/messages", "/messages/count_tokens")):
        kind = {413: "request_too_large"}.get(status, "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    code = {413: "request_too_large", 400: "bad_request", 431: "request_header_fields_too_large",
            408: "request_timeout", 503: "server_busy", 403: "forbidden", 415: "unsupported_media_type"}.get(status)
    return error_body(status, message, code=code)


_SHUTDOWN = "The gateway is shutting down and ended this stream before the answer was complete (stream_interrupted)."


def stream_interrupted_event(path: str) -> bytes:
    """The last event of a stream the server ends at shutdown, in the shape of the API asked."""
    if path.rstrip("/").endswith("/messages"):
        return b"event: error\ndata: %s\n\n" % orjson.dumps(
            {"type": "error", "error": {"type": "overloaded_error", "message": _SHUTDOWN}})
    return b"data: %s\n\n" % orjson.dumps(
        {"error": {"message": _SHUTDOWN, "type": "server_error", "param": None, "code": "stream_interrupted"}})


def answer_headers(reply: Reply, call: Call) -> list[tuple[str, str]]:
    """The headers of every proxied answer: who answered, how, why, on which config version, at what cost."""
    headers = [("x-request-id", call.request_id), ("x-stellwerk-deployment", reply.deployment),
               ("x-stellwerk-attempts", str(reply.attempts)), ("x-stellwerk-route", reply.route),
               ("x-stellwerk-config-version", str(call.table.version))]
    if is_result(reply):
        headers.append(("x-stellwerk-cost", f"{reply.cost:.8f}"))
    extra = reply.headers  # middlewares' own: x-ratelimit-*, x-stellwerk-cache, ...
    for name, _ in extra:
        if name in _ANSWER_NAMES:  # a middleware's header replaces the front door's
            return merge_headers(headers, extra)
    headers += extra
    return headers


_ANSWER_NAMES = frozenset({"x-request-id", "x-stellwerk-deployment", "x-stellwerk-attempts", "x-stellwerk-route",
                           "x-stellwerk-config-version", "x-stellwerk-cost"})


def error_response(err: StellwerkError, headers: list[tuple[str, str]]) -> Response:
    extra = list(headers)
    if isinstance(err, AllAttemptsFailedError):
        extra.append(("x-stellwerk-attempts", str(len(err.attempts))))
        if err.status == 429:
            waits = [a.retry_after for a in err.attempts if a.retry_after is not None]
            extra.append(("retry-after", str(max(1, round(min(waits)))) if waits else "1"))
    elif isinstance(err, UpstreamError) and err.retry_after is not None and err.status == 429:
        extra.append(("retry-after", str(max(1, round(err.retry_after)))))
    extra.extend(err.headers)
    return Response(err.status, error_body(err.status, err.message, err.error_type, err.code, err.param), extra)
