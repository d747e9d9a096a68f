"""Classifying Anthropic error answers (and stream ``error`` events) into outcomes.

Anthropic errors look like ``{"type": "error", "error": {"type", "message"}, "request_id"}``
(https://docs.claude.com/en/api/errors).

======  =========================================================  ================
status  meaning                                                    outcome
======  =========================================================  ================
400     ``invalid_request_error``                                  CLIENT_ERROR
400     "prompt is too long", context window / limit exceeded      CONTEXT_TOO_LONG
400     output blocked by the content filtering policy             CONTENT_POLICY
400     credit balance too low, usage / spend limits reached       MOVE_ON
401     ``authentication_error``: the deployment's key             MOVE_ON
402     ``billing_error``                                          MOVE_ON
403     ``permission_error``                                       MOVE_ON
404     ``not_found_error``: the deployment's model                MOVE_ON
408     request timeout                                            RETRY_HERE
409     ``conflict`` (documented as retryable)                     RETRY_HERE
413     ``request_too_large``: over 32 MB                          CLIENT_ERROR
429     ``rate_limit_error``: retry here if ``retry-after`` ≤ 10 s  RETRY_HERE
429     longer waits, or ``enforced_spend_limit_reached``          MOVE_ON
500     ``api_error``                                              RETRY_HERE
529     ``overloaded_error`` (and every other 5xx)                 RETRY_HERE
other   anything else                                              MOVE_ON
======  =========================================================  ================

The wait of a 429 is read by :func:`~stellwerk.providers.ratelimit.parse_retry_after`
(``retry-after``, else the ``anthropic-ratelimit-*-reset`` of an exhausted limit); what
Anthropic's codes and messages leave open falls back to :func:`~stellwerk.providers.classify.by_status`.
"""

from __future__ import annotations

from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.classify import by_status, json_or_none, mentions, rate_limited
from stellwerk.providers.ratelimit import parse_retry_after
from stellwerk.redact import summarize_body

from .wire import ERROR_STATUS

__all__ = ["classify_error", "error_from_event", "error_from_payload"]

_CONTEXT_MARKERS = ("prompt is too long", "context window", "context limit", "context length", "too many tokens")
_POLICY_MARKERS = ("content filtering policy", "content policy")
_DEPLOYMENT_MARKERS = ("credit balance", "usage limit", "spend limit")


def _error_fields(payload: Any) -> tuple[str, str | None, str | None]:
    """``(message, type, details.error_code)`` of an Anthropic (or OpenAI-shaped) error payload."""
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        message, etype, details = err.get("message"), err.get("type"), err.get("details")
        code = details.get("error_code") if isinstance(details, dict) else err.get("code")
        return (str(message) if message else "", str(etype) if etype else None, str(code) if code else None)
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"], None, None
    return "", None, None


def error_from_payload(payload: Any, status: int, headers: dict[str, str] | None = None, raw: bytes = b"") -> UpstreamError:
    """Classify an error given as a parsed JSON payload and the HTTP status it came with."""
    message, etype, code = _error_fields(payload)
    if not message:
        message = summarize_body(raw) if raw else f"upstream answered HTTP {status}"
    retry_after = parse_retry_after(headers or {})
    outcome: Outcome
    if status in (400, 422) and mentions(message, _CONTEXT_MARKERS):
        outcome = Outcome.CONTEXT_TOO_LONG
    elif status in (400, 422) and mentions(message, _POLICY_MARKERS):
        outcome = Outcome.CONTENT_POLICY
    elif status in (400, 422) and mentions(message, _DEPLOYMENT_MARKERS):
        outcome = Outcome.MOVE_ON
    elif status == 413:
        outcome = Outcome.CLIENT_ERROR
    elif status == 429:
        outcome = rate_limited(retry_after, exhausted=code == "enforced_spend_limit_reached")
    else:
        outcome = by_status(status, retry_after)
    return UpstreamError(outcome, message, status=status, retry_after=retry_after, body=raw or None,
                         error_type=etype, code=code)


def classify_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
    """Classify a non-2xx answer."""
    return error_from_payload(json_or_none(body), status, headers, body)


def error_from_event(payload: dict[str, Any], raw: bytes) -> UpstreamError:
    """Classify a stream ``error`` event, whose status is implied by its error type (500 if unknown)."""
    _, etype, _ = _error_fields(payload)
    return error_from_payload(payload, ERROR_STATUS.get(etype or "", 500), None, raw)
