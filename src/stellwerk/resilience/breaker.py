"""Circuit breaker per deployment: a failure policy and a state machine, kept apart (Finagle).

State machine::

              trip (policy says "dead")
    CLOSED ───────────────────────────────► OPEN (until now + open time)
      ▲                                       │ open time elapsed
      │ probe succeeds                        ▼
      └──────────────────────────────── HALF_OPEN ── probe fails ──► OPEN (longer)
                                        (one probe at a time)

Open time grows per consecutive ejection and is jittered so that replicas and
deployments don't all probe at once:

    open(k) = min(max_open_time, open_time * 2 ** (k - 1)) * uniform(1 - jitter, 1 + jitter)

``k`` resets after the deployment has stayed closed for ``max_open_time``.

Policy ("is this deployment dead?"): ``consecutive_failures`` in a row, or a
failure rate of at least ``failure_rate`` over the last ``window`` seconds once
there were at least ``min_requests`` answers in it. Only failures that say
something about the deployment count (never client errors).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable

from .options import BreakerOptions
from .window import SlidingCounter

__all__ = ["BreakerOptions", "BreakerState", "CircuitBreaker", "FailurePolicy"]


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class FailurePolicy:
    """Counts outcomes; says when the deployment should be considered dead."""

    __slots__ = ("_clock", "_fail", "_ok", "consecutive", "options")

    def __init__(self, options: BreakerOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self.consecutive = 0
        self._clock = clock
        self._ok = SlidingCounter(clock, options.window)
        self._fail = SlidingCounter(clock, options.window)

    def record(self, success: bool) -> bool:
        """Record one answer; True when the breaker should trip."""
        if success:
            self.consecutive = 0
            self._ok.add()
            return False
        self.consecutive += 1
        self._fail.add()
        o = self.options
        if self.consecutive >= o.consecutive_failures:
            return True
        failed = self._fail.total()
        total = self._ok.total() + failed
        return total >= o.min_requests and failed / total >= o.failure_rate

    def failure_rate(self) -> float:
        failed = self._fail.total()
        total = self._ok.total() + failed
        return failed / total if total else 0.0

    def reset(self) -> None:
        self.consecutive = 0
        self._ok = SlidingCounter(self._clock, self.options.window)
        self._fail = SlidingCounter(self._clock, self.options.window)


class CircuitBreaker:
    """The state machine. ``allow()`` before an attempt; ``record()`` after it."""

    __slots__ = (
        "_clock",
        "_rng",
        "closed_since",
        "ejections",
        "on_change",
        "open_until",
        "options",
        "policy",
        "probing",
        "state",
        "trips",
    )

    def __init__(
        self,
        options: BreakerOptions,
        clock: Callable[[], float],
        rng: random.Random,
        on_change: Callable[[BreakerState, BreakerState], None] | None = None,
    ) -> None:
        self.options = options
        self.policy = FailurePolicy(options, clock)
        self.state = BreakerState.CLOSED
        self.ejections = 0
        self.trips = 0
        self.open_until = 0.0
        self.probing = False
        self._clock = clock
        self._rng = rng
        self.closed_since = clock()
        self.on_change = on_change

    def _set(self, state: BreakerState) -> None:
        old, self.state = self.state, state
        if old is not state and self.on_change is not None:
            self.on_change(old, state)

    def available(self) -> bool:
        """Could an attempt go here now? (Does not claim the half-open probe.)"""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return self._clock() >= self.open_until
        return not self.probing

    def allow(self) -> bool:
        """Claim permission for one attempt. In half-open, only one probe at a time is allowed."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            if self._clock() < self.open_until:
                return False
            self._set(BreakerState.HALF_OPEN)
        if self.probing:
            return False
        self.probing = True
        return True

    def record(self, success: bool) -> None:
        """The outcome of an attempt that ``allow()`` let through."""
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self.probing = False
            if success:
                self.policy.reset()
                self.closed_since = now
                self._set(BreakerState.CLOSED)
            else:
                self._trip(now)
            return
        if self.state is BreakerState.OPEN:
            return  # a straggler from before the trip
        if success and self.ejections and now - self.closed_since >= self.options.max_open_time:
            self.ejections = 0  # healthy for long enough: forget past ejections
        if self.policy.record(success):
            self._trip(now)

    def release(self) -> None:
        """An allowed attempt ended without telling anything (cancelled, client error)."""
        if self.state is BreakerState.HALF_OPEN:
            self.probing = False

    def _trip(self, now: float) -> None:
        o = self.options
        self.ejections += 1
        self.trips += 1
        base = min(o.max_open_time, o.open_time * (2 ** (self.ejections - 1)))
        jitter = self._rng.uniform(1 - o.jitter, 1 + o.jitter) if o.jitter else 1.0
        self.open_until = now + base * jitter
        self.probing = False
        self._set(BreakerState.OPEN)

    def recover(self) -> None:
        """Close now (an active health check found the deployment answering again)."""
        if self.state is not BreakerState.CLOSED:
            self.policy.reset()
            self.probing = False
            self.closed_since = self._clock()
            self._set(BreakerState.CLOSED)

    def force_open(self, seconds: float) -> None:
        """Open now for ``seconds`` (an active health check found the deployment dead)."""
        now = self._clock()
        self.open_until = max(self.open_until, now + seconds)
        self.probing = False
        self._set(BreakerState.OPEN)

    def snapshot(self) -> dict[str, object]:
        now = self._clock()
        return {
            "state": self.state.value,
            "consecutive_failures": self.policy.consecutive,
            "failure_rate": round(self.policy.failure_rate(), 4),
            "ejections": self.ejections,
            "trips": self.trips,
            "open_for_s": round(max(0.0, self.open_until - now), 3) if self.state is BreakerState.OPEN else 0.0,
        }
