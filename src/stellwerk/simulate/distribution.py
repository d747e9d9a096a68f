"""A quantity of a scenario: a constant, or a lognormal distribution given by its median and 99th percentile.

A lognormal ``X = exp(N(mu, sigma))`` has median ``exp(mu)`` and 99th percentile
``exp(mu + z99 * sigma)`` with ``z99 = 2.3263``, so::

    mu    = ln(median)
    sigma = ln(p99 / median) / z99

Its mean is ``median * exp(sigma**2 / 2)``: the simulated provider's ``latency_ms``
(a mean) with ``latency_sigma = sigma`` draws the same distribution.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Z99", "Distribution"]

Z99 = 2.3263478740408408
"""The standard normal's 99th percentile."""


@dataclass(frozen=True, slots=True)
class Distribution:
    median: float
    p99: float
    """Equal to ``median`` for a constant."""

    def __post_init__(self) -> None:
        if not 0 <= self.median <= self.p99:
            raise ValueError(f"expected 0 <= median <= p99, got median {self.median:g}, p99 {self.p99:g}")

    @classmethod
    def constant(cls, value: float) -> Distribution:
        return cls(value, value)

    @property
    def sigma(self) -> float:
        """The lognormal's shape (0 for a constant or a zero median)."""
        if self.median <= 0 or self.p99 <= self.median:
            return 0.0
        return math.log(self.p99 / self.median) / Z99

    @property
    def mean(self) -> float:
        sigma = self.sigma
        return self.median * math.exp(sigma * sigma / 2)

    def sample(self, rng: random.Random) -> float:
        sigma = self.sigma
        if sigma == 0:
            return self.median
        return rng.lognormvariate(math.log(self.median), sigma)

    def sampler(self) -> Callable[[random.Random], float]:
        """:meth:`sample` with the parameters worked out once (the same draws, for drawing many)."""
        sigma = self.sigma
        if sigma == 0:
            median = self.median
            return lambda rng: median
        mu = math.log(self.median)
        return lambda rng: rng.lognormvariate(mu, sigma)

    def to_dict(self) -> float | dict[str, float]:
        return self.median if self.sigma == 0 else {"median": self.median, "p99": self.p99}
