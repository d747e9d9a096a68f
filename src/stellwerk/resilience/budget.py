"""Retry budgets: retries may add at most a fixed share of extra load (Finagle, Envoy).

Every original request *deposits*; every retry or hedge must *withdraw*. Over
a sliding window of ``window`` seconds, retries are allowed while

    retries_in_window < ratio * requests_in_window + min_per_second * window

so with a healthy upstream a request may be retried freely, but when
everything fails, upstream attempts stay close to ``1 + ratio`` per client
request instead of ``1 + retries``: a failing provider never turns into a
retry storm against the others. The reserve (``min_per_second``) lets
low-traffic deployments still retry.

The window is kept as one-second buckets in a ring, so time is injected and
no test sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec
from msgspec import Meta

__all__ = ["RetryBudget", "RetryBudgetOptions"]


class RetryBudgetOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ratio: Annotated[float, Meta(ge=0, le=10)] = 0.2
    """Retries allowed per original request, on average over the window. Default 0.2 (20% extra load)."""
    min_per_second: Annotated[float, Meta(ge=0, le=1000)] = 1.0
    """Retries per second always allowed (the reserve). Default 1."""
    window: Annotated[int, Meta(ge=1, le=600)] = 10
    """Seconds over which requests and retries are counted. Default 10."""


class RetryBudget:
    """A sliding-window retry budget. Not thread-safe (one event loop)."""

    __slots__ = ("options", "_clock", "_requests", "_retries", "_stamps", "_req_total", "_ret_total")

    def __init__(self, options: RetryBudgetOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self._clock = clock
        n = options.window
        self._requests = [0] * n
        self._retries = [0] * n
        self._stamps = [-1] * n
        self._req_total = 0
        self._ret_total = 0

    def _bucket(self) -> int:
        second = int(self._clock())
        n = self.options.window
        i = second % n
        if self._stamps[i] != second:
            # Expire every bucket older than the window (cheap: at most n per call, usually 0 or 1).
            for j in range(n):
                if self._stamps[j] != -1 and second - self._stamps[j] >= n:
                    self._req_total -= self._requests[j]
                    self._ret_total -= self._retries[j]
                    self._requests[j] = self._retries[j] = 0
                    self._stamps[j] = -1
            self._stamps[i] = second
        return i

    def deposit(self) -> None:
        """Record one original request."""
        i = self._bucket()
        self._requests[i] += 1
        self._req_total += 1

    def can_withdraw(self) -> bool:
        self._bucket()
        o = self.options
        return self._ret_total < o.ratio * self._req_total + o.min_per_second * o.window

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        if not self.can_withdraw():
            return False
        i = self._bucket()
        self._retries[i] += 1
        self._ret_total += 1
        return True

    def snapshot(self) -> dict[str, float]:
        self._bucket()
        o = self.options
        return {
            "requests_in_window": self._req_total,
            "retries_in_window": self._ret_total,
            "retries_allowed": o.ratio * self._req_total + o.min_per_second * o.window,
        }
