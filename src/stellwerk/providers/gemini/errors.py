"""Classifying Gemini API errors: ``{"error": {"code", "message", "status", "details"}}``.

=======  =====================================================  ===================================
status   Google status / what the answer says                   outcome
=======  =====================================================  ===================================
400      INVALID_ARGUMENT, the input exceeds the token limit    CONTEXT_TOO_LONG
400      INVALID_ARGUMENT, API_KEY_INVALID (reason or message)  MOVE_ON (the deployment's key)
400      FAILED_PRECONDITION (billing, region)                  MOVE_ON
400      INVALID_ARGUMENT, anything else                        CLIENT_ERROR
401/403  UNAUTHENTICATED / PERMISSION_DENIED                    MOVE_ON
404      NOT_FOUND (no such model)                              MOVE_ON
429      RESOURCE_EXHAUSTED, ``RetryInfo.retryDelay`` ≤ 10 s    RETRY_HERE
429      a longer delay, or a per-day quota                     MOVE_ON
499/5xx  CANCELLED, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED    RETRY_HERE
=======  =====================================================  ===================================

The retry delay comes from the ``google.rpc.RetryInfo`` detail, else from
``retry-after``. Refused prompts are not HTTP errors: the answer's
``promptFeedback.blockReason`` (see ``response``) gives ``CONTENT_POLICY``.
"""

from __future__ import annotations

from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.classify import by_status, json_or_none, mentions, rate_limited
from stellwerk.providers.ratelimit import parse_duration, parse_retry_after
from stellwerk.redact import summarize_body

__all__ = ["classify_error", "error_from_payload"]

_CONTEXT = ("exceeds the maximum number of tokens", "input token count", "context window", "too many tokens",
            "prompt is too long")
_AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"})
_AUTH_MESSAGES = ("api key not valid", "api key expired")


def _details(error: dict[str, Any]) -> tuple[float | None, bool, str | None]:
    """``(retry delay, a per-day quota ran out, ErrorInfo.reason)`` from ``error.details``."""
    delay: float | None = None
    daily = False
    reason: str | None = None
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("RetryInfo") and isinstance(detail.get("retryDelay"), str):
            delay = parse_duration(detail["retryDelay"])
        elif kind.endswith("QuotaFailure"):
            daily = daily or any("perday" in str(v.get("quotaId", "")).lower()
                                 for v in detail.get("violations") or () if isinstance(v, dict))
        elif kind.endswith("ErrorInfo") and isinstance(detail.get("reason"), str):
            reason = detail["reason"]
    return delay, daily, reason


def error_from_payload(payload: Any, status: int, headers: dict[str, str] | None = None,
                       raw: bytes = b"") -> UpstreamError:
    """Classify an error given as a parsed payload (an answer body, or an event of a stream)."""
    if isinstance(payload, list) and payload:
        payload = payload[0]  # streamGenerateContent without alt=sse answers errors as a one-element list
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or "") or (summarize_body(raw) if raw else f"upstream answered HTTP {status}")
    google_status = str(error.get("status") or "") or None
    delay, daily, reason = _details(error)
    retry_after = delay if delay is not None else parse_retry_after(headers or {})
    outcome: Outcome
    if status == 429 or google_status == "RESOURCE_EXHAUSTED":
        outcome = rate_limited(retry_after, exhausted=daily)
    elif reason in _AUTH_REASONS or mentions(message, _AUTH_MESSAGES) or google_status in (
            "FAILED_PRECONDITION", "UNAUTHENTICATED", "PERMISSION_DENIED"):
        outcome = Outcome.MOVE_ON
    elif status == 400 and mentions(message, _CONTEXT):
        outcome = Outcome.CONTEXT_TOO_LONG
    elif status == 499:
        outcome = Outcome.RETRY_HERE
    else:
        outcome = by_status(status, retry_after)
    return UpstreamError(outcome, message, status=status, retry_after=retry_after, body=raw or None,
                         code=google_status)


def classify_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
    return error_from_payload(json_or_none(body), status, headers, body)
