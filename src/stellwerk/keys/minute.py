"""Requests and tokens of the last minute, in one window per account that reads the clock once per request.

    buckets (oldest first): [second, requests, tokens]  ─ one per second in which something was counted
    advance(second)   forget the buckets that left the window (amortised O(1): each bucket leaves once)
    count(second, r, t)  add to the newest bucket (or start one)

``requests`` and ``tokens`` are the sums over the buckets, kept current by
``count`` and ``advance``, so reading them is an attribute read. The caller
reads the clock once and passes the second: admission reads both sums of a key
and its team at one instant.
"""

from __future__ import annotations

from collections import deque

__all__ = ["WINDOW", "MinuteWindow"]

WINDOW = 60
"""Seconds the window spans."""


class MinuteWindow:
    """What was counted during the last :data:`WINDOW` seconds, by whole seconds of the injected clock."""

    __slots__ = ("_buckets", "requests", "second", "tokens")

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()
        self.second = -1
        """The second of the last ``advance``: the sums are as of it."""
        self.requests = 0
        self.tokens = 0

    def advance(self, second: int) -> None:
        """Forget what was counted at ``second - WINDOW`` or before."""
        self.second = second
        buckets = self._buckets
        edge = second - WINDOW
        while buckets and buckets[0][0] <= edge:
            _, requests, tokens = buckets.popleft()
            self.requests -= requests
            self.tokens -= tokens

    def count(self, second: int, requests: int, tokens: int) -> None:
        """Add at ``second`` (call :meth:`advance` with it first)."""
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            newest = buckets[-1]
            newest[1] += requests
            newest[2] += tokens
        else:
            buckets.append([second, requests, tokens])
        self.requests += requests
        self.tokens += tokens

    def reset_in(self, now: float, series: int) -> float:
        """Seconds from ``now`` until the oldest request (``series`` 1) or token (2) still counted leaves the
        window; 0 when none is counted. Usually the oldest bucket holds both, so this looks at one bucket."""
        for bucket in self._buckets:
            if bucket[series]:
                return max(0.0, bucket[0] + WINDOW - now)
        return 0.0
