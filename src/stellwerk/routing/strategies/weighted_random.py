"""``weighted-random``: weighted sampling without replacement, with the injected RNG.

Each candidate draws a key ``-ln(u) / weight`` (``u`` uniform in (0, 1]), an
exponential variable with rate ``weight``; the order is by ascending key
(Efraimidis-Spirakis). The first is therefore picked with probability
``weight / sum(weights)``, and each following position is a weighted draw
from those left. Weight-0 deployments come last, in listed order. Stateless
besides the RNG, so several gateway processes need no coordination (unlike
``weighted``, which is exact per process).

    strategy: weighted-random   # weights from deployments[].weight; no options
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import msgspec

from ._support import ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["WeightedRandomOptions", "WeightedRandomStrategy"]


class WeightedRandomOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """No options: the weights are the deployments' ``weight`` (default 1)."""


class WeightedRandomStrategy(StrategyBase):
    name = "weighted-random"

    def __init__(self, options: WeightedRandomOptions | None = None, *,
                 rng: random.Random, clock: Clock | None = None) -> None:
        self.options = options if options is not None else WeightedRandomOptions()
        self._rng = rng

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        draw = self._rng.random
        log = math.log
        inf = math.inf
        keys = [-log(1.0 - draw()) / c.weight if c.weight > 0 else inf for c in candidates]
        positions = sorted(range(len(candidates)), key=keys.__getitem__)
        total = sum(c.weight for c in candidates if c.weight > 0)
        order = [Scored(candidates[i].id, candidates[i].weight, "sampled") for i in positions]
        why = f"weight {order[0].score:g} of {total:g}" if order else ""
        return ranked(self.name, order, why)
