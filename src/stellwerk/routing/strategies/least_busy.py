"""``least-busy``: the deployment with the fewest requests in flight; the others by in-flight count.

    strategy: least-busy
    strategy_options: {ties: random}    # or listed (the default)
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import msgspec

from ._support import empty, ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["LeastBusyOptions", "LeastBusyStrategy"]


class LeastBusyOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ties: Literal["listed", "random"] = "listed"
    """Among equally busy deployments: the first listed, or one at random (spreads load when
    most are idle). Default ``listed``."""


class LeastBusyStrategy(StrategyBase):
    name = "least-busy"

    def __init__(self, options: LeastBusyOptions | None = None, *,
                 rng: random.Random, clock: Clock | None = None) -> None:
        self.options = options if options is not None else LeastBusyOptions()
        self._rng = rng

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        if not candidates:
            return empty(self.name)
        ordered = sorted(candidates, key=lambda c: c.in_flight)
        if self.options.ties == "random":
            least = ordered[0].in_flight
            tied = 1
            while tied < len(ordered) and ordered[tied].in_flight == least:
                tied += 1
            if tied > 1:
                k = self._rng.randrange(tied)
                ordered.insert(0, ordered.pop(k))
        order = [Scored(c.id, c.in_flight, "by in-flight") for c in ordered]
        why = f"{ordered[0].in_flight} in flight"
        if len(ordered) > 1:
            why += f" vs {ordered[1].in_flight}"
        return ranked(self.name, order, why)
