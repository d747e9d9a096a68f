"""``cost``: the cheapest deployment for this request; the others by ascending cost.

    estimated cost = (prompt_tokens * input_per_mtok + output * output_per_mtok) / 1e6
    output         = the client's max_tokens when set, else expected_output_tokens

Costs within ``tie_tolerance`` of each other count as equal and are ordered
by latency (``ttft`` for streams, else ``latency``; unknown last), then listed
order. Deployments below ``min_tier`` are left out of the order. *Cheapest
capable* comes from running the router's filters first (``CapabilityFilter``:
context window, tools, images, JSON).

    strategy: cost
    strategy_options: {min_tier: 2, tie_tolerance: 0.05}
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

from ._support import expected_output, ranked, response_time
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase
from .filters import TierFilter

__all__ = ["CostOptions", "CostStrategy"]


class CostOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    min_tier: int | None = None
    """Only deployments with ``tier`` at least this are used. Default: no floor."""
    tie_tolerance: Annotated[float, Meta(ge=0, le=1)] = 0.0
    """Costs within this fraction of the cheapest in a run count as ties, decided by latency
    (0.05 = within 5%). Range 0-1. Default 0: only equal costs tie."""


def _dollars(x: float) -> str:
    return f"${x:.6f}" if x < 1 else f"${x:.2f}"


class CostStrategy(StrategyBase):
    name = "cost"

    def __init__(self, options: CostOptions | None = None, *,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.options = options if options is not None else CostOptions()
        min_tier = self.options.min_tier
        self._tier = TierFilter(min_tier) if min_tier is not None else None

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        below = ""
        if self._tier is not None:
            candidates, removed = self._tier.apply(candidates, request)
            if removed:
                below = f"; {len(removed)} below tier {self._tier.min_tier}"
        if not candidates:
            return Ranking((), f"{self.name}: no candidates{below}")
        prompt, output = request.prompt_tokens, expected_output(request)
        costs = [(prompt * c.input_per_mtok + output * c.output_per_mtok) / 1e6 for c in candidates]
        positions = sorted(range(len(candidates)), key=costs.__getitem__)
        scale = 1 + self.options.tie_tolerance
        i = 0
        while i < len(positions):
            # A run of ties: every cost within the tolerance of the run's cheapest, ordered by latency.
            limit = costs[positions[i]] * scale
            j = i + 1
            while j < len(positions) and costs[positions[j]] <= limit:
                j += 1
            if j - i > 1:
                positions[i:j] = sorted(positions[i:j], key=lambda k: _speed(candidates[k], request))
            i = j
        order = [Scored(candidates[k].id, costs[k], "by cost") for k in positions]
        why = _dollars(costs[positions[0]])
        if len(positions) > 1:
            why += f" vs {_dollars(costs[positions[1]])}"
        return ranked(self.name, order, why + below)


def _speed(c: Candidate, request: RequestFacts) -> float:
    value = response_time(c, request.stream)
    return value if value is not None else math.inf
