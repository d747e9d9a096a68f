"""Exponential backoff with full jitter, bounded, honouring the upstream's Retry-After.

    delay(n) = uniform(0, min(cap, base * 2 ** (n - 1)))        n = 1, 2, ... (the n-th retry)

If the upstream said how long to wait (``Retry-After``, rate-limit reset
headers) and that is no longer than ``max_retry_after``, the delay is at least
that long. A longer requested wait is not honoured here: the outcome is then
MOVE_ON and another deployment is tried instead.
"""

from __future__ import annotations

import random
from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["Backoff", "BackoffOptions"]


class BackoffOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    base: Annotated[float, Meta(ge=0, le=60)] = 0.1
    """Seconds; the first retry waits up to this long. Default 0.1."""
    cap: Annotated[float, Meta(ge=0, le=300)] = 5.0
    """Seconds; no single wait is longer (except a honoured Retry-After). Default 5."""
    max_retry_after: Annotated[float, Meta(ge=0, le=10)] = 10.0
    """Longest Retry-After honoured by waiting, in seconds (at most 10: a longer wait is classified as
    "move on" by the providers' adapters). Default 10."""


class Backoff:
    def __init__(self, options: BackoffOptions, rng: random.Random) -> None:
        self.options = options
        self._rng = rng

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before the ``retry``-th retry (1-based)."""
        o = self.options
        ceiling = min(o.cap, o.base * (2 ** max(0, retry - 1)))
        wait = self._rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
        if retry_after is not None and 0 < retry_after <= o.max_retry_after:
            wait = max(wait, retry_after)
        return wait
