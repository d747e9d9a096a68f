"""``throughput``: the highest observed output tokens per second first.

Deployments with fewer than ``min_observations`` answers (or no figure yet)
are explored as in ``latency``: they are assumed to be as fast as the median
(or the best) of the known ones, and with ``explore_probability`` a random
new one is put first. Ties keep the listed order.

    strategy: throughput
    strategy_options: {min_observations: 3, assume_new: median, explore_probability: 0.05}
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

from ._support import Assume, empty, explore, fill_new, ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["ThroughputOptions", "ThroughputStrategy"]


class ThroughputOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    min_observations: Annotated[int, Meta(ge=0, le=10_000)] = 3
    """Answers a deployment needs before its own speed is trusted. Default 3."""
    assume_new: Assume = "median"
    """Speed assumed for new deployments: ``median`` or ``best`` of the known ones. Default ``median``."""
    explore_probability: Annotated[float, Meta(ge=0, le=1)] = 0.05
    """Chance that a random new deployment is tried first. Range 0-1. Default 0.05."""


class ThroughputStrategy(StrategyBase):
    name = "throughput"

    def __init__(self, options: ThroughputOptions | None = None, *,
                 rng: random.Random, clock: Clock | None = None) -> None:
        self.options = options if options is not None else ThroughputOptions()
        self._rng = rng

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        n = len(candidates)
        if n == 0:
            return empty(self.name)
        o = self.options
        speeds, is_new = fill_new(candidates, [c.tokens_per_second for c in candidates],
                                  o.min_observations, o.assume_new, low_is_better=False)
        positions = sorted(range(n), key=lambda k: -speeds[k])
        pick = explore(self._rng, o.explore_probability, is_new) if n > 1 else None
        if pick is not None:
            positions.remove(pick)
            positions.insert(0, pick)
            why = f"explore: new, {candidates[pick].observations} observations"
        else:
            first = positions[0]
            why = f"{'assumed ' if is_new[first] else ''}{speeds[first]:.0f} tok/s"
            if n > 1:
                why += f" vs {speeds[positions[1]]:.0f}"
        order = [Scored(candidates[k].id, speeds[k], "new" if is_new[k] else "by speed") for k in positions]
        return ranked(self.name, order, why)
