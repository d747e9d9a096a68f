"""How long an upstream asks to be left alone: reading every provider's rate-limit headers.

Pure: instants in headers (an HTTP-date ``retry-after``, Anthropic's RFC 3339
``anthropic-ratelimit-*-reset``) are measured against the answer's own ``date``
header, never against the local clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRY_AFTER_LIMIT", "parse_duration", "parse_retry_after"]

RETRY_AFTER_LIMIT = 10.0
"""A 429 asking to wait longer than this many seconds means: move on to another deployment."""

_ANTHROPIC_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from the first of these that is present and readable (``None`` if none is):

    1. ``retry-after-ms`` (milliseconds);
    2. ``retry-after``: seconds, or an HTTP date (measured against ``date``);
    3. OpenAI's ``x-ratelimit-reset-requests`` / ``-tokens``: durations such as ``6m0s``;
    4. Anthropic's ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset``: RFC 3339
       instants (measured against ``date``), of the limits whose ``-remaining`` is 0; the latest wins.
    """
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            seconds = _until(_http_date(value), headers)
            if seconds is not None:
                return seconds
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        value = headers.get(name)
        if value:
            duration = parse_duration(value)
            if duration is not None:
                return duration
    waits = [_until(_rfc3339(headers.get(f"anthropic-ratelimit-{limit}-reset", "")), headers)
             for limit in _ANTHROPIC_LIMITS if headers.get(f"anthropic-ratelimit-{limit}-remaining") == "0"]
    known = [w for w in waits if w is not None]
    return max(known) if known else None


def parse_duration(text: str) -> float | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``250ms``, ``1h2m3.5s`` (``None`` if unreadable)."""
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


def _http_date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _rfc3339(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _until(instant: datetime | None, headers: Mapping[str, str]) -> float | None:
    """Seconds from the answer's ``date`` header to ``instant`` (``None`` if either is missing or naive)."""
    now = _http_date(headers.get("date", ""))
    if instant is None or now is None or instant.tzinfo is None or now.tzinfo is None:
        return None
    return max(0.0, (instant - now).total_seconds())
