"""A sliding window counter (per-second buckets), for requests and tokens per minute."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SlidingCounter"]


class SlidingCounter:
    """Sum of what was added during the last ``window`` seconds. Time is injected."""

    __slots__ = ("_clock", "_counts", "_first", "_first_at", "_last", "_stamps", "_total", "window")

    def __init__(self, clock: Callable[[], float], window: int = 60) -> None:
        self.window = window
        self._clock = clock
        self._counts = [0] * window
        self._stamps = [-1] * window
        self._total = 0
        self._last = -1
        """The second of the most recent access: within it, no bucket can have expired."""
        self._first = -1
        self._first_at = -1
        """The oldest second still counted (-1: none), as found at second ``_first_at`` (kept within it)."""

    def _bucket(self, second: int) -> int:
        n = self.window
        i = second % n
        if second != self._last:
            self._last = second
            if self._stamps[i] != second:
                for j in range(n):
                    if self._stamps[j] != -1 and second - self._stamps[j] >= n:
                        self._total -= self._counts[j]
                        self._counts[j] = 0
                        self._stamps[j] = -1
                self._stamps[i] = second
        return i

    def add(self, amount: int = 1) -> None:
        second = int(self._clock())
        i = second % self.window if second == self._last else self._bucket(second)  # within a second: no expiry
        self._counts[i] += amount
        self._total += amount

    def total(self) -> int:
        second = int(self._clock())
        if second != self._last:
            self._bucket(second)
        return self._total

    def reset_in(self) -> float:
        """Seconds until the oldest amount still counted leaves the window (0 when nothing is counted).

        The oldest second is searched once per second (within a second nothing expires, and an add can
        only make the current second the oldest of an empty counter).
        """
        now = self._clock()
        second = int(now)
        if second != self._last:
            self._bucket(second)
        if not self._total:
            return 0.0
        if second != self._first_at:
            self._first_at = second
            self._first = min((s for s, c in zip(self._stamps, self._counts, strict=True) if c and s != -1),
                              default=-1)
        if self._first == -1:
            self._first = second
        return max(0.0, self._first + self.window - now)
