"""The parts of error classification every provider shares: the status table and rate limits.

Each provider's ``errors`` module reads its own error body (codes, messages,
retry hints) and decides the cases its codes make clear; what they leave open
falls back to :func:`by_status`, the same table as the ``openai`` adapter's:

============  =====================================================  =============
status        meaning                                                outcome
============  =====================================================  =============
400, 422      the request is wrong                                   CLIENT_ERROR
401, 403      the deployment's credential is wrong or lacks access   MOVE_ON
404           the upstream has no such model                         MOVE_ON
408, 409      timeout / conflict                                     RETRY_HERE
429           rate limited: see :func:`rate_limited`                 RETRY_HERE / MOVE_ON
5xx           server error, overloaded                               RETRY_HERE
other         anything else                                          MOVE_ON
============  =====================================================  =============
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from stellwerk.errors import Outcome

from .ratelimit import RETRY_AFTER_LIMIT

__all__ = ["by_status", "json_or_none", "mentions", "rate_limited"]


def rate_limited(retry_after: float | None, exhausted: bool = False) -> Outcome:
    """A rate limit: ``MOVE_ON`` when the quota is exhausted or the wait exceeds ``RETRY_AFTER_LIMIT``
    seconds (another deployment answers sooner), else ``RETRY_HERE``."""
    if exhausted or (retry_after is not None and retry_after > RETRY_AFTER_LIMIT):
        return Outcome.MOVE_ON
    return Outcome.RETRY_HERE


def by_status(status: int, retry_after: float | None = None) -> Outcome:
    """The outcome an HTTP status alone implies (the table above)."""
    if status in (400, 422):
        return Outcome.CLIENT_ERROR
    if status == 429:
        return rate_limited(retry_after)
    if status in (408, 409) or status >= 500:
        return Outcome.RETRY_HERE
    return Outcome.MOVE_ON


def mentions(text: str, markers: Iterable[str]) -> bool:
    """True if the lower-cased ``text`` contains any of the (lower-case) ``markers``."""
    lowered = text.lower()
    return any(m in lowered for m in markers)


def json_or_none(body: bytes) -> Any:
    """An error body's JSON, or None when it is empty or not JSON (a proxy's HTML page)."""
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
