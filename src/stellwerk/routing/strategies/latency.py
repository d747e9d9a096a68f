"""``latency``: power of two choices over peak-EWMA cost (Finagle's ``p2cPeakEwma``, Linkerd).

For each candidate::

    estimate = ttft                            streams (time to first token; else latency)
             = latency                         complete answers (else ttft)
             = first + seconds_per_token * n   long answers: n = expected output tokens
                                               ≥ long_answer_tokens, first = ttft (else latency)
    cost     = estimate * (in_flight + 1)

where ``latency`` and ``ttft`` are peak-EWMAs (see ``ewma.PeakEWMA``), so a
deployment that slows down is avoided from its next answer on, and the
in-flight factor spreads a burst before any answer came back.

Two distinct candidates are drawn at random (injected RNG) and the cheaper
one is picked: this avoids the herd behaviour of always picking the global
minimum from stale figures, yet almost never picks the worst. The rest of the
order (fallbacks) is by ascending cost.

New deployments (fewer than ``min_observations`` answers) are explored: their
estimate is assumed to be the median (or the best) of the known ones, and with
``explore_probability`` a random new one is put first outright. Once observed
they are judged on their own figures.

    strategy: latency
    strategy_options: {min_observations: 3, assume_new: median, explore_probability: 0.05, long_answer_tokens: 1000}
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

from ._support import Assume, empty, expected_output, explore, fill_new, ranked, response_time
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["LatencyOptions", "LatencyStrategy"]


class LatencyOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    min_observations: Annotated[int, Meta(ge=0, le=10_000)] = 3
    """Answers a deployment needs before its own latency figures are trusted. Default 3."""
    assume_new: Assume = "median"
    """Estimate assumed for new deployments: ``median`` or ``best`` of the known ones (0 when none
    is known). Default ``median``."""
    explore_probability: Annotated[float, Meta(ge=0, le=1)] = 0.05
    """Chance that a random new deployment is tried first regardless of cost. Range 0-1. Default 0.05."""
    long_answer_tokens: Annotated[int, Meta(ge=1)] = 1000
    """From this many expected output tokens on, decode speed counts (``seconds_per_token * n``). Default 1000."""


class LatencyStrategy(StrategyBase):
    name = "latency"

    def __init__(self, options: LatencyOptions | None = None, *,
                 rng: random.Random, clock: Clock | None = None) -> None:
        self.options = options if options is not None else LatencyOptions()
        self._rng = rng

    def estimate(self, c: Candidate, request: RequestFacts) -> float | None:
        """Seconds this candidate is expected to take (before the in-flight factor); None if unknown."""
        return _estimate(c, request.stream, self._long(request))

    def _long(self, request: RequestFacts) -> int:
        """The expected output tokens when the answer counts as long, else 0."""
        n = expected_output(request)
        return n if n >= self.options.long_answer_tokens else 0

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        n = len(candidates)
        if n == 0:
            return empty(self.name)
        o = self.options
        stream, long = request.stream, self._long(request)
        estimates, is_new = fill_new(candidates, [_estimate(c, stream, long) for c in candidates],
                                     o.min_observations, o.assume_new, low_is_better=True)
        costs = [e * (c.in_flight + 1) for c, e in zip(candidates, estimates, strict=True)]
        pick = explore(self._rng, o.explore_probability, is_new) if n > 1 else None
        if pick is not None:
            why = f"explore: new, {candidates[pick].observations} observations"
        elif n == 1:
            pick, why = 0, f"only candidate, {_label(candidates[0], estimates[0], is_new[0])}"
        else:
            draw = self._rng.random
            i = int(draw() * n)
            j = int(draw() * (n - 1))
            j += j >= i
            pick, other = (i, j) if costs[i] <= costs[j] else (j, i)
            why = (f"p2c: {_label(candidates[pick], estimates[pick], is_new[pick])} "
                   f"vs {_label(candidates[other], estimates[other], is_new[other])}")
        costs_pick = costs[pick]
        costs[pick] = -math.inf
        order = [Scored(candidates[k].id, costs[k], "by cost") for k in sorted(range(n), key=costs.__getitem__)]
        order[0] = Scored(candidates[pick].id, costs_pick, why)
        return ranked(self.name, order, why)


def _estimate(c: Candidate, stream: bool, long: int) -> float | None:
    if long and c.seconds_per_token is not None:
        first = c.ttft if c.ttft is not None else c.latency
        if first is not None:
            return first + c.seconds_per_token * long
    return response_time(c, stream)


def _label(c: Candidate, estimate: float, new: bool) -> str:
    label = f"{'assumed' if new else 'ewma'} {estimate:.3g}s"
    return f"{label}*{c.in_flight + 1}" if c.in_flight else label
