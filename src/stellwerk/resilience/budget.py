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

from .options import RetryBudgetOptions
from .window import SlidingCounter

__all__ = ["RetryBudget", "RetryBudgetOptions"]


class RetryBudget:
    """A sliding-window retry budget. Not thread-safe (one event loop)."""

    __slots__ = ("_requests", "_retries", "options")

    def __init__(self, options: RetryBudgetOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self._requests = SlidingCounter(clock, options.window)
        self._retries = SlidingCounter(clock, options.window)

    def deposit(self) -> None:
        """Record one original request."""
        self._requests.add()

    def can_withdraw(self) -> bool:
        o = self.options
        return self._retries.total() < o.ratio * self._requests.total() + o.min_per_second * o.window

    def try_withdraw(self) -> bool:
        """Take one retry from the budget; False when it is spent."""
        if not self.can_withdraw():
            return False
        self._retries.add()
        return True

    def snapshot(self) -> dict[str, float]:
        o = self.options
        requests = self._requests.total()
        return {
            "requests_in_window": requests,
            "retries_in_window": self._retries.total(),
            "retries_allowed": o.ratio * requests + o.min_per_second * o.window,
        }
