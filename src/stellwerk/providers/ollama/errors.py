"""Classifying Ollama's errors: ``{"error": "message"}`` with an HTTP status.

=======  ==========================================================  ===============
status   what the message says                                       outcome
=======  ==========================================================  ===============
404      ``model "x" not found, try pulling it first``               MOVE_ON
400      the input exceeds the context length                        CONTEXT_TOO_LONG
400      the model ``does not support`` tools / images / …           MOVE_ON
400      anything else                                               CLIENT_ERROR
401/403  a proxy or ollama.com refused the key                       MOVE_ON
429      rate limited (ollama.com), by ``retry-after``               RETRY_HERE / MOVE_ON
500      ``model requires more system memory``                       MOVE_ON
5xx      server busy (``OLLAMA_MAX_QUEUE``), model crashed           RETRY_HERE
=======  ==========================================================  ===============

A stream that fails after it began sends ``{"error": "…"}`` as a line; the
decoder classifies it as a 500.
"""

from __future__ import annotations

from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.classify import by_status, json_or_none, mentions
from stellwerk.providers.ratelimit import parse_retry_after
from stellwerk.redact import summarize_body

__all__ = ["classify_error", "error_from_payload"]

_CONTEXT = ("context length", "context window", "too long", "exceeds the maximum")
_INCAPABLE = ("does not support", "requires more system memory", "not found, try pulling")


def error_from_payload(payload: Any, status: int, headers: dict[str, str] | None = None,
                       raw: bytes = b"") -> UpstreamError:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    message = str(error or "") or (summarize_body(raw) if raw else f"upstream answered HTTP {status}")
    retry_after = parse_retry_after(headers or {})
    if mentions(message, _INCAPABLE):
        outcome = Outcome.MOVE_ON
    elif status == 400 and mentions(message, _CONTEXT):
        outcome = Outcome.CONTEXT_TOO_LONG
    else:
        outcome = by_status(status, retry_after)
    return UpstreamError(outcome, message, status=status, retry_after=retry_after, body=raw or None)


def classify_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
    return error_from_payload(json_or_none(body), status, headers, body)
