"""``weighted``: smooth weighted round robin (nginx's algorithm), deterministic and without bursts.

Each deployment keeps a *current* weight (0 at first). For every decision::

    for each candidate c:  current[c] += weight[c]
    pick = the candidate with the largest current (ties: listed order)
    current[pick] -= sum of the candidates' weights

Over every cycle of ``sum(weights)`` decisions each deployment is picked
exactly ``weight`` times (for integer weights), spread out rather than in
runs: weights 5:1:1 give ``a a b a c a a``. The returned order is the pick,
then the others by descending ``current + weight`` (who would be picked at
the next decision), with weight-0 (drained) deployments last.

Weights are read from the snapshots (``Candidate.weight``) at every decision,
so a weight changed at run time (admin API) applies to the next decision. A
candidate missing from a decision (filtered out, unhealthy) keeps its current
weight untouched, as nginx does; the sum of all current weights stays 0, so
its return shifts the others by at most one cycle.

    strategy: weighted          # weights from deployments[].weight; no options
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import msgspec

from ._support import empty, ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["WeightedOptions", "WeightedStrategy"]


class WeightedOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """No options: the weights are the deployments' ``weight`` (default 1)."""


class WeightedStrategy(StrategyBase):
    """Smooth weighted round robin over the candidates' weights. Stateful: one per model."""

    name = "weighted"

    def __init__(self, options: WeightedOptions | None = None, *,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.options = options if options is not None else WeightedOptions()
        self._current: dict[str, float] = {}

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        if not candidates:
            return empty(self.name)
        current = self._current
        total = 0.0
        pick = -1
        best = -math.inf
        upcoming: list[float] = []  # current + weight: who would be picked at the next decision
        for i, c in enumerate(candidates):
            w = c.weight
            if w <= 0:
                upcoming.append(-math.inf)
                continue
            v = current.get(c.id, 0.0) + w
            current[c.id] = v
            total += w
            upcoming.append(v + w)
            if v > best:
                pick, best = i, v
        if pick < 0:
            return ranked(self.name, [Scored(c.id, 0.0, "weight 0") for c in candidates], "all weights 0: listed order")
        chosen = candidates[pick]
        current[chosen.id] = best - total
        upcoming[pick] = math.inf
        positions = sorted(range(len(candidates)), key=upcoming.__getitem__, reverse=True)
        order = [Scored(candidates[k].id, upcoming[k], "next" if upcoming[k] > -math.inf else "weight 0") for k in positions]
        why = f"swrr: weight {chosen.weight:g} of {total:g}"
        order[0] = Scored(chosen.id, best, why)
        return ranked(self.name, order, why)
