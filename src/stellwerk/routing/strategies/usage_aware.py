"""``usage-aware``: the deployment with the most rate-limit headroom left; never one over its limit.

Headroom is the smallest remaining fraction over the deployment's limits
after this request (see ``filters.headroom``): configured ``rpm``/``tpm`` in
the current window and the provider's ``x-ratelimit-remaining-*``, with the
request's estimated tokens (prompt + expected output). Deployments without
limits have headroom 1. Those whose headroom would fall below ``reserve``
(by default: that would exceed a limit) are left out of the order, so a
burst never pushes a deployment over its configured RPM/TPM; when all are
left out the order is empty and the router answers 429. Ties keep the listed
order.

    strategy: usage-aware
    strategy_options: {reserve: 0.1}
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated

import msgspec
from msgspec import Meta

from ._support import empty, ranked, request_tokens
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase
from .filters import headroom

__all__ = ["UsageAwareOptions", "UsageAwareStrategy"]


_TIGHTEST = {"": "no limits", "rpm": "tightest: rpm", "tpm": "tightest: tpm",
             "requests": "tightest: provider requests", "tokens": "tightest: provider tokens"}


class UsageAwareOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reserve: Annotated[float, Meta(ge=0, lt=1)] = 0.0
    """Share of each limit kept free: a deployment is used only while its headroom after the
    request stays at or above this. Range 0-<1. Default 0 (up to the limit)."""


class UsageAwareStrategy(StrategyBase):
    name = "usage-aware"
    counts_usage = True

    def __init__(self, options: UsageAwareOptions | None = None, *,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.options = options if options is not None else UsageAwareOptions()

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        tokens = request_tokens(request)
        reserve = self.options.reserve
        kept: list[Candidate] = []
        lefts: list[float] = []
        whys: list[str] = []
        for c in candidates:
            left, which = headroom(c, tokens)
            if left >= reserve:
                kept.append(c)
                lefts.append(left)
                whys.append(_TIGHTEST[which])
        full = len(candidates) - len(kept)
        if not kept:
            return Ranking((), f"{self.name}: none with headroom ({full} at their limit)") if full else empty(self.name)
        positions = sorted(range(len(kept)), key=lefts.__getitem__, reverse=True)
        order = [Scored(kept[k].id, lefts[k], whys[k]) for k in positions]
        why = f"headroom {lefts[positions[0]]:.0%}"
        if len(positions) > 1:
            why += f" vs {lefts[positions[1]]:.0%}"
        if full:
            why += f"; {full} at their limit"
        return ranked(self.name, order, why)
