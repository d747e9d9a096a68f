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

import orjson

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.redact import summarize_body

__all__ = ["RETRY_AFTER_LIMIT", "classify_error", "error_from_payload", "parse_retry_after"]

RETRY_AFTER_LIMIT = 10.0
"""A 429 asking to wait longer than this many seconds means: move on to another deployment."""

_CONTEXT_MARKERS = ("maximum context length", "context_length_exceeded", "context window", "too many tokens")
_POLICY_CODES = {"content_policy_violation", "content_filter", "content_filtered", "ResponsibleAIPolicyViolation"}


def parse_retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, ``retry-after`` or ``x-ratelimit-reset-*``."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: treat as unknown
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        value = headers.get(name)
        if value:
            seconds = _duration(value)
            if seconds is not None:
                return seconds
    return None


def _duration(text: str) -> float | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``250ms``, ``1h2m3.5s``."""
    total, number = 0.0, ""
    i = 0
    try:
        while i < len(text):
            c = text[i]
            if c.isdigit() or c == ".":
                number += c
            elif text.startswith("ms", i):
                total += float(number) / 1000
                number, i = "", i + 1
            elif c in "hms":
                total += float(number) * {"h": 3600, "m": 60, "s": 1}[c]
                number = ""
            else:
                return None
            i += 1
        if number:
            total += float(number)
    except ValueError:
        return None
    return total


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
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        payload = None
    return error_from_payload(payload, status, headers, body)
