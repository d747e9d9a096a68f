"""Time-decayed moving averages for deployment state: :class:`PeakEWMA` and :class:`EWMA`.

Observations arrive unevenly spaced, so the weight of the past depends on the
time since the previous observation, not on a count (Eckner, "Algorithms for
unevenly spaced time series"): with ``dt`` seconds since the last one and time
constant ``tau``,

    w = exp(-dt / tau)
    ewma = w * ewma + (1 - w) * x

:class:`PeakEWMA` is Finagle's latency cost for load balancing: it jumps up to
a new peak at once (``x > cost`` → ``cost = x``), so a deployment that slows
down loses traffic on its next answer, and only decays exponentially toward
lower observations. Read with :meth:`PeakEWMA.value`, it also decays toward 0
while nothing is observed, so a deployment that stopped getting traffic
because it was slow looks cheap again after a few ``tau`` and is probed; if
it is still slow, the probe's answer puts it straight back at its peak.

Time is passed in (``now``, from the owner's injected clock): these are plain
state holders, cheap (a few hundred ns per call) and not thread-safe (one
event loop).
"""

from __future__ import annotations

import math

__all__ = ["EWMA", "PeakEWMA"]


def _decay(tau: float, stamp: float, now: float) -> float:
    """The weight left to a value stamped at ``stamp`` at ``now``: ``exp(-dt / tau)`` (1 if ``now`` is earlier)."""
    return math.exp(-max(now - stamp, 0.0) / tau)


def _check_tau(tau: float) -> float:
    if not tau > 0 or math.isinf(tau):
        raise ValueError(f"tau: expected seconds > 0, got {tau!r}")
    return tau


class PeakEWMA:
    """Peak-sensitive, time-decayed average (Finagle's ``PeakEwma``).

    ``tau`` is the time constant in seconds: an old value's weight falls to
    1/e after ``tau`` seconds (half-life ``tau * ln 2``). Default 10.
    """

    __slots__ = ("_cost", "_stamp", "count", "tau")

    def __init__(self, tau: float = 10.0) -> None:
        self.tau = _check_tau(tau)
        self._cost = 0.0
        self._stamp: float | None = None
        self.count = 0
        """Observations so far (``Candidate.observations``)."""

    def observe(self, x: float, now: float) -> None:
        """Add one observation (e.g. seconds to the complete answer) made at ``now``."""
        stamp = self._stamp
        if stamp is None or x > self._cost:
            self._cost = x
        elif now > stamp:  # _decay written out (one call fewer per answer); an earlier ``now`` weighs 1
            w = math.exp((stamp - now) / self.tau)
            self._cost = self._cost * w + x * (1.0 - w)
        if stamp is None or now > stamp:
            self._stamp = now
        self.count += 1

    def value(self, now: float) -> float | None:
        """The cost at ``now``, decayed toward 0 since the last observation; None before the first."""
        if self._stamp is None:
            return None
        return self._cost * _decay(self.tau, self._stamp, now)

    def __repr__(self) -> str:
        return f"PeakEWMA(cost={self._cost:.4g}, count={self.count}, tau={self.tau})"


class EWMA:
    """Plain time-decayed average: ``w = exp(-dt / tau)``; ``value = w * value + (1 - w) * x``.

    The first observation is taken as is. Unlike :class:`PeakEWMA` the value
    does not decay while nothing is observed (it is the last known estimate).
    """

    __slots__ = ("_stamp", "_value", "count", "tau")

    def __init__(self, tau: float = 10.0) -> None:
        self.tau = _check_tau(tau)
        self._value = 0.0
        self._stamp: float | None = None
        self.count = 0

    def observe(self, x: float, now: float) -> None:
        stamp = self._stamp
        if stamp is None:
            self._value = x
            self._stamp = now
        elif now > stamp:  # _decay written out (the hot path: one call fewer per answer)
            w = math.exp((stamp - now) / self.tau)
            self._value = self._value * w + x * (1.0 - w)
            self._stamp = now
        # else w = 1: the value stays (an observation stamped no later than the last one)
        self.count += 1

    def value(self) -> float | None:
        return None if self._stamp is None else self._value

    def __repr__(self) -> str:
        return f"EWMA(value={self._value:.4g}, count={self.count}, tau={self.tau})"
