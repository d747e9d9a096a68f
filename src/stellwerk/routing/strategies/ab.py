"""``ab``: A/B tests and canaries: deployments in variants that get fixed shares of the traffic.

    strategy: ab
    strategy_options:
      sticky_on: user            # or header:x-user-id, metadata:tenant
      variants:
        - {name: control, deployments: [a], percent: 95}
        - {name: canary,  deployments: [b], percent: 5}

Assignment is sticky: the request's ``sticky_on`` value is hashed with
BLAKE2b (with ``salt``; never Python's per-process ``hash()``) into a bucket
0-9999, and the variants own consecutive bucket ranges in listed order
(95% → buckets 0-9499). So a user keeps their variant across requests,
processes and restarts, and raising a canary from 5% to 10% only moves users
*into* the canary. Requests without the value get a random bucket (injected
RNG).

The order is the assigned variant's deployments (in the variant's order),
then the other variants' deployments as fallbacks, then the model's
deployments in no variant. Options can change at run time (admin API): the
router then builds a new strategy into a new routing table; buckets are a
hash, so users keep their variant. Per-variant figures are kept by
:class:`~.experiments.ExperimentStats`, a listener of finished requests.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ._support import empty, ranked
from .base import Candidate, Clock, Ranking, RequestFacts, Scored, StrategyBase

__all__ = ["BUCKETS", "ABOptions", "ABStrategy", "Assignment", "Variant", "bucket_of"]

BUCKETS = 10_000


class Variant(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:/@+-]+$")]
    """Shown in stats and the ``x-stellwerk-route`` header (letters, digits, ``._:/@+-``). Unique. Required."""
    deployments: Annotated[list[str], Meta(min_length=1)]
    """Deployment ids of the model, tried in this order. Required."""
    percent: Annotated[float, Meta(ge=0, le=100)]
    """Share of users, 0-100 in steps of 0.01; the variants' shares add up to 100. Required."""


class ABOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    variants: Annotated[list[Variant], Meta(min_length=1)]
    """The variants, percentages adding up to 100; no deployment in two of them. Required."""
    sticky_on: Annotated[str, Meta(pattern=r"^(user|header:[A-Za-z0-9-]+|metadata:[A-Za-z0-9._-]+)$")] = "user"
    """What keeps a user in their variant: ``user`` (the request's ``user`` or API key name),
    ``header:NAME`` or ``metadata:KEY``. Default ``user``."""
    salt: Annotated[str, Meta(max_length=256)] = ""
    """Mixed into the hash: a new salt reshuffles who is in which variant. Default empty."""

    def __post_init__(self) -> None:
        total = sum(v.percent for v in self.variants)
        if abs(total - 100.0) > 1e-6:
            raise ValueError(f"the variants' percentages add up to {total:g}, expected 100")
        names: set[str] = set()
        owner: dict[str, str] = {}
        for v in self.variants:
            if v.name in names:
                raise ValueError(f"the variant name '{v.name}' is used twice")
            names.add(v.name)
            for d in v.deployments:
                if d in owner:
                    raise ValueError(f"deployment '{d}' is in both variants '{owner[d]}' and '{v.name}'")
                owner[d] = v.name


class Assignment(msgspec.Struct, frozen=True):
    variant: str
    bucket: int
    sticky: bool
    """False when the request had no ``sticky_on`` value and the bucket was drawn at random."""


def bucket_of(value: str, salt: str = "") -> int:
    """The stable bucket 0-9999 of a sticky value: BLAKE2b, the same in every process."""
    digest = hashlib.blake2b(f"{salt}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class _Table:
    """The options, prepared for lookups."""

    __slots__ = ("bounds", "key", "kind", "options", "variant_of")

    def __init__(self, options: ABOptions) -> None:
        self.options = options
        cumulative = 0.0
        bounds = []
        for v in options.variants:
            cumulative += v.percent
            bounds.append(round(cumulative * BUCKETS / 100))
        bounds[-1] = BUCKETS
        self.bounds = bounds
        kind, _, key = options.sticky_on.partition(":")
        self.kind = kind
        self.key = key.lower() if kind == "header" else key
        self.variant_of = {d: v.name for v in options.variants for d in v.deployments}


class ABStrategy(StrategyBase):
    name = "ab"
    runs_experiments = True

    def __init__(self, options: ABOptions, *, rng: random.Random, clock: Clock | None = None) -> None:
        self._rng = rng
        self._table = _Table(options)

    @property
    def options(self) -> ABOptions:
        return self._table.options

    def variant_of(self, deployment_id: str) -> str | None:
        """The variant a deployment belongs to, None if none."""
        return self._table.variant_of.get(deployment_id)

    def sticky_value(self, request: RequestFacts) -> str | None:
        t = self._table
        if t.kind == "user":
            value: Any = request.user
        elif t.kind == "header":
            value = request.headers.get(t.key)
        else:
            value = request.metadata.get(t.key)
        if value is None or isinstance(value, (dict, list)) or value == "":
            return None
        return str(value)

    def _bucket(self, request: RequestFacts) -> tuple[int, int, bool]:
        """``(variant index, bucket, sticky)``; draws from the RNG when the request has no sticky value."""
        t = self._table
        value = self.sticky_value(request)
        bucket = bucket_of(value, t.options.salt) if value is not None else self._rng.randrange(BUCKETS)
        return bisect.bisect_right(t.bounds, bucket), bucket, value is not None

    def assign(self, request: RequestFacts) -> Assignment:
        """The request's variant (as :meth:`rank` would assign it)."""
        k, bucket, sticky = self._bucket(request)
        return Assignment(self._table.options.variants[k].name, bucket, sticky)

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        if not candidates:
            return empty(self.name)
        t = self._table
        k, bucket, sticky = self._bucket(request)
        variants = t.options.variants
        present = {c.id for c in candidates}
        name = variants[k].name
        order = [Scored(d, bucket, f"variant {name}") for d in variants[k].deployments if d in present]
        why = f"variant {name}, bucket {bucket} {f'by {t.options.sticky_on}' if sticky else 'random'}"
        if not order:
            why = f"{why}: none available, fallback"
        for i, v in enumerate(variants):
            if i != k:
                order += [Scored(d, None, f"fallback: variant {v.name}") for d in v.deployments if d in present]
        order += [Scored(c.id, None, "in no variant") for c in candidates if c.id not in t.variant_of]
        return ranked(self.name, order, why)

    def snapshot(self) -> dict[str, Any]:
        """The assignment, for ``GET /admin/experiments`` (per-variant figures come from the experiment stats)."""
        o = self.options
        return {
            "sticky_on": o.sticky_on,
            "variants": [{"name": v.name, "percent": v.percent, "deployments": list(v.deployments)}
                         for v in o.variants],
        }
