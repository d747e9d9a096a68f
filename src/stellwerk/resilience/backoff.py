"""Exponential backoff with full jitter, bounded, honouring the upstream's Retry-After.

    delay(n) = uniform(0, min(cap, base * 2 ** (n - 1)))        n = 1, 2, ... (the n-th retry)

If the upstream said how long to wait (``Retry-After``, rate-limit reset
headers) and that is no longer than ``max_retry_after``, the delay is at least
that long. A longer requested wait is not honoured here: the outcome is then
MOVE_ON and another deployment is tried instead.
"""

from __future__ import annotations

import random

from .options import BackoffOptions

__all__ = ["Backoff", "BackoffOptions"]


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
