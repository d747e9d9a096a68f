"""``failover``: the deployments in listed order, or by ``priority`` (lower first; ties keep listed order).

    strategy: failover
    strategy_options: {by_priority: true}
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import msgspec

from ._support import ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["FailoverOptions", "FailoverStrategy"]


class FailoverOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    by_priority: bool = True
    """Order by ``priority`` (lower first), ties in listed order; false = listed order only.
    With no priorities configured (all 0) both are the listed order. Default true."""


class FailoverStrategy(StrategyBase):
    """The first candidate answers; the others are fallbacks in the same order. Candidates arrive in listed order."""

    name = "failover"
    keeps_listed_order = True

    def __init__(self, options: FailoverOptions | None = None, *,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.options = options if options is not None else FailoverOptions()

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        if self.options.by_priority and any(c.priority for c in candidates):
            ordered = sorted(candidates, key=lambda c: c.priority)
            return ranked(self.name, [Scored(c.id, c.priority, f"priority {c.priority}") for c in ordered],
                          f"priority {ordered[0].priority}")
        return ranked(self.name, [Scored(c.id, i, "listed") for i, c in enumerate(candidates)], "listed first")
