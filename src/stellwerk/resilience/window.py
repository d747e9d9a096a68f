"""A sliding window counter (per-second buckets), for requests and tokens per minute."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SlidingCounter"]


class SlidingCounter:
    """Sum of what was added during the last ``window`` seconds. Time is injected."""

    __slots__ = ("_clock", "_counts", "_last", "_stamps", "_total", "window")

    def __init__(self, clock: Callable[[], float], window: int = 60) -> None:
        self.window = window
        self._clock = clock
        self._counts = [0] * window
        self._stamps = [-1] * window
        self._total = 0
        self._last = -1
        """The second of the most recent access: within it, no bucket can have expired."""

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
        i = self._bucket(int(self._clock()))
        self._counts[i] += amount
        self._total += amount

    def total(self) -> int:
        second = int(self._clock())
        if second != self._last:
            self._bucket(second)
        return self._total

    def reset_in(self) -> float:
        """Seconds until the oldest amount still counted leaves the window (0 when nothing is counted)."""
        now = self._clock()
        self.total()
        oldest = min((s for s, c in zip(self._stamps, self._counts, strict=True) if c and s != -1), default=None)
        return 0.0 if oldest is None else max(0.0, oldest + self.window - now)
