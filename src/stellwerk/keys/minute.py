"""Requests and tokens of the last minute, in one window per account that reads the clock once per request.

    open second:   [head, head_requests, head_tokens]   ─ the newest second, counted in plain fields
    closed seconds (oldest first): (second, requests, tokens)  ─ one per earlier second that counted something
    count(second, r, t)  add to the open second (a new second closes the open one first)
    advance(second)      forget the seconds that left the window (amortised O(1): each leaves once)

``requests`` and ``tokens`` are the sums over the window, kept current by
``count`` and ``advance``, so reading them is an attribute read. The caller
reads the clock once and passes the second: admission reads both sums of a key
and its team at one instant. Counting within the open second (nearly every
request) touches integers only, no container.
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["WINDOW", "MinuteWindow"]

WINDOW: Final = 60
"""Seconds the window spans."""


class MinuteWindow:
    """What was counted during the last :data:`WINDOW` seconds, by whole seconds of the injected clock."""

    __slots__ = ("_closed", "_head", "_head_requests", "_head_tokens", "_reset_at", "_reset_requests", "_reset_tokens",
                 "requests", "second", "tokens")

    def __init__(self) -> None:
        self._closed: deque[tuple[int, int, int]] = deque()
        self._head = -1
        """The open (newest) second; -1: none yet."""
        self._head_requests = 0
        self._head_tokens = 0
        self.second = -1
        """The second of the last ``advance``: the sums are as of it."""
        self.requests = 0
        self.tokens = 0
        self._reset_at = -1
        """The second :attr:`_reset_requests` and :attr:`_reset_tokens` were computed for; -1: to be computed
        (every change of the oldest counted second sets it)."""
        self._reset_requests = 0
        self._reset_tokens = 0

    def advance(self, second: int) -> None:
        """Forget what was counted at ``second - WINDOW`` or before."""
        self.second = second
        edge = second - WINDOW
        if 0 <= self._head <= edge:  # the open second left, and every closed one before it
            self._closed.clear()
            self._head, self._head_requests, self._head_tokens = -1, 0, 0
            self.requests = self.tokens = 0
            self._reset_at = -1
            return
        closed = self._closed
        while closed and closed[0][0] <= edge:
            _, requests, tokens = closed.popleft()
            self.requests -= requests
            self.tokens -= tokens
            self._reset_at = -1

    def count(self, second: int, requests: int, tokens: int) -> None:
        """Add at ``second`` (call :meth:`advance` with it first). A second before the open one (a clock that
        stepped back) counts in the open one."""
        if second > self._head:
            if self._head_requests or self._head_tokens:
                self._closed.append((self._head, self._head_requests, self._head_tokens))
            self._head, self._head_requests, self._head_tokens = second, requests, tokens
            self._reset_at = -1
        else:
            if (requests and not self._head_requests) or (tokens and not self._head_tokens):
                self._reset_at = -1  # the open second may now be the oldest that counts these
            self._head_requests += requests
            self._head_tokens += tokens
        self.requests += requests
        self.tokens += tokens

    def _oldest(self, series: int) -> int:
        """The oldest second still counted with requests (``series`` 1) or tokens (2); -1 when none."""
        for bucket in self._closed:
            if bucket[series]:
                return bucket[0]
        if self._head >= 0 and (self._head_requests if series == 1 else self._head_tokens):
            return self._head
        return -1

    def reset_after(self, second: int, series: int) -> int:
        """Whole seconds from the start of ``second`` until the oldest request (``series`` 1) or token (2) still
        counted leaves the window, 0 when none is: :meth:`reset_in` rounded up, for any instant in ``second``
        (seconds are whole)."""
        if self._reset_at != second:  # at most once a second while the oldest counted second stays
            self._reset_requests = _until(self._oldest(1), second)
            self._reset_tokens = _until(self._oldest(2), second)
            self._reset_at = second
        return self._reset_requests if series == 1 else self._reset_tokens

    def reset_in(self, now: float, series: int) -> float:
        """Seconds from ``now`` until the oldest request (``series`` 1) or token (2) still counted leaves the
        window; 0 when none is counted. Usually the oldest second holds both, so this looks at one."""
        oldest = self._oldest(series)
        return max(0.0, oldest + WINDOW - now) if oldest >= 0 else 0.0


def _until(oldest: int, second: int) -> int:
    """Whole seconds from the start of ``second`` until ``oldest`` leaves the window; 0 when it is -1 (none)."""
    if oldest < 0:
        return 0
    left = oldest + WINDOW - second
    return left if left > 0 else 0
