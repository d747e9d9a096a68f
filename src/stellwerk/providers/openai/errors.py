"""Classifying OpenAI-compatible error answers into outcomes.

============  ==========================================================  =================
status        meaning                                                     outcome
============  ==========================================================  =================
400, 422      bad request                                                 CLIENT_ERROR
400           ``context_length_exceeded`` / "maximum context length"      CONTEXT_TOO_LONG
400           ``content_policy_violation``, Azure ``content_filter``      CONTENT_POLICY
401, 403      the deployment's credential is wrong or lacks access        MOVE_ON
404           the upstream has no such model / deployment                 MOVE_ON
408, 409      timeout / conflict: OpenAI documents these as retryable     RETRY_HERE
429           rate limited: retry later if the reset is near              RETRY_HERE
429           ``insufficient_quota``, or Retry-After over 10 s            MOVE_ON
5xx           server error / overloaded                                   RETRY_HERE
other         anything else                                               MOVE_ON
============  ==========================================================  =================

401/403/404 are not passed to the client: they describe the gateway's
deployment, which the client can neither see nor fix.
"""

from __future__ import annotations

from typing import Any

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.classify import json_or_none
from stellwerk.providers.ratelimit import RETRY_AFTER_LIMIT, parse_retry_after
from stellwerk.redact import summarize_body

__all__ = ["RETRY_AFTER_LIMIT", "classify_error", "error_from_payload", "parse_retry_after"]

_CONTEXT_MARKERS = ("maximum context length", "context_length_exceeded", "context window", "too many tokens")
_POLICY_CODES = {"content_policy_violation", "content_filter", "content_filtered", "ResponsibleAIPolicyViolation"}

def _error_fields(payload: Any) -> tuple[str, str | None, str | None]:
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        message = err.get("message")
        code = err.get("code")
        etype = err.get("type")
        inner = err.get("innererror")
        if isinstance(inner, dict) and inner.get("code"):
            code = code or inner.get("code")
        return (
            str(message) if message else "",
            str(code) if code is not None else None,
            str(etype) if etype is not None else None,
        )
    if isinstance(err, str):
        return err, None, None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"], None, None
    return "", None, None


def error_from_payload(payload: Any, status: int, headers: dict[str, str] | None = None, raw: bytes = b"") -> UpstreamError:
    """Classify an error given as a parsed JSON payload (an answer body or a stream event)."""
    message, code, etype = _error_fields(payload)
    if not message:
        message = summarize_body(raw) if raw else f"upstream answered HTTP {status}"
    lowered = message.lower()
    retry_after = parse_retry_after(headers or {})
    outcome: Outcome
    if status == 400 or status == 422:
        if code == "context_length_exceeded" or any(m in lowered for m in _CONTEXT_MARKERS):
            outcome = Outcome.CONTEXT_TOO_LONG
        elif code in _POLICY_CODES or "content management policy" in lowered or "content filter" in lowered:
            outcome = Outcome.CONTENT_POLICY
        else:
            outcome = Outcome.CLIENT_ERROR
    elif status in (401, 403, 404):
        outcome = Outcome.MOVE_ON
    elif status == 429:
        if code == "insufficient_quota" or (retry_after is not None and retry_after > RETRY_AFTER_LIMIT):
            outcome = Outcome.MOVE_ON
        else:
            outcome = Outcome.RETRY_HERE
    elif status in (408, 409) or status >= 500:
        outcome = Outcome.RETRY_HERE
    else:
        outcome = Outcome.MOVE_ON
    return UpstreamError(outcome, message, status=status, retry_after=retry_after, body=raw or None,
                         error_type=etype, code=code)


def classify_error(status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
    return error_from_payload(json_or_none(body), status, headers, body)
