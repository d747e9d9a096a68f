"""Global rpm and tpm of keys, teams and deployments: one ADMIT round trip per request, RECONCILE at completion.

    limits stage   local admit (per replica: max_parallel, budgets, headers); the key's and team's shared
                   accounts become the request's *pending* claim (:mod:`.admission`)
    attempt loop   claim(deployment): ONE script checks and counts the pending accounts and the deployment
                   together; the deployment full ─► skipped (the pending accounts stay pending for the next
                   one); an account full ─► 429 naming it
    completion     reconcile: the real tokens replace the reservation (a failure gives the reservation back)

A request that never reaches a deployment (a cache hit) counts its pending accounts after the fact.
While Redis is down (or fails mid-call) nothing waits on it: keys and teams are checked locally against
their limits divided by the replicas last seen alive (:meth:`local_view`), deployments against the same
share of their own limits, counted by this replica. No request fails because Redis is gone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from stellwerk.state.records import KeyRecord, TeamRecord

from .node import Cluster
from .scripts import ADMIT, RECONCILE

if TYPE_CHECKING:
    from stellwerk.routing.deployment import Deployment

    from .admission import Pending

__all__ = ["Refused", "SharedLimits", "Subject"]

R = TypeVar("R", KeyRecord, TeamRecord)
Subject = tuple[str, int | None, int | None, int]
"""An account, its rpm and tpm (None: unlimited) and the tokens this request reserves there."""


class Refused(msgspec.Struct, frozen=True):
    """The account that was full: its index among the subjects, and its requests and tokens in the window."""

    index: int
    requests: int
    tokens: int


class SharedLimits:
    """Windows of accounts in Redis (``P a:key:<id>``, ``P a:team:<name>``, ``P a:dep:<id>``)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._views: dict[str, tuple[object, int, KeyRecord | TeamRecord]] = {}

    @property
    def up(self) -> bool:
        return self.cluster.up

    async def admit(self, subjects: Sequence[Subject]) -> tuple[int, Refused | None] | None:
        """Check and count every subject at once: ``(second, None)`` when admitted (the second to reconcile
        in), ``(second, Refused)`` when not (nothing counted), None when Redis cannot answer."""
        cluster = self.cluster
        now = int(cluster.wall())
        args: list[int] = [now]
        for _, rpm, tpm, tokens in subjects:
            args += (rpm or 0, tpm or 0, tokens)
        reply = await cluster.run(ADMIT, [cluster.key("a:" + s[0]) for s in subjects], tuple(args))
        if reply is None:
            return None
        if reply[0]:
            return now, Refused(int(reply[0]) - 1, int(reply[1]), int(reply[2]))
        return now, None

    def reconcile(self, names: Sequence[str], at: int, delta: int) -> None:
        """Add ``delta`` tokens to the accounts' second ``at`` (fire and forget; lost while Redis is down)."""
        if delta:
            cluster = self.cluster
            cluster.send("EVALSHA", RECONCILE.sha, len(names), *(cluster.key("a:" + n) for n in names),
                         at, int(cluster.wall()), delta)

    def local_view(self, record: R) -> R:
        """``record`` as this replica enforces it alone: its rates and parallelism split by the replicas last
        seen alive while Redis is down; unchanged while it is up."""
        replicas = self.cluster.replicas
        if self.cluster.up or replicas <= 1:
            return record
        name = f"key:{record.id}" if isinstance(record, KeyRecord) else f"team:{record.name}"
        cached = self._views.get(name)
        if cached is None or cached[0] is not record or cached[1] != replicas:
            if len(self._views) > 4096:
                self._views.clear()
            view = msgspec.structs.replace(record, rpm=share(record.rpm, replicas), tpm=share(record.tpm, replicas),
                                           max_parallel=share(record.max_parallel, replicas))
            cached = self._views[name] = (record, replicas, view)
        shared = cached[2]
        assert isinstance(shared, type(record))
        return shared

    # -- deployments --------------------------------------------------------------------------------
    async def claim(self, dep: Deployment, tokens: int) -> str | None:
        """Count one attempt on ``dep`` (and the request's pending accounts) against the global windows; why
        the deployment cannot take it (a filter's reason) or None. Raises the 429 of a full account."""
        from .admission import PENDING

        pending = PENDING.get()
        if pending is not None and pending.at is None and not pending.claiming:
            return await self._claim_with(pending, dep, tokens)
        rpm, tpm = dep.config.rpm, dep.config.tpm
        if rpm is None and tpm is None:
            return None
        if self.cluster.up:
            result = await self.admit([("dep:" + dep.id, rpm, tpm, tokens)])
            if result is not None:
                return None if result[1] is None else _full(dep, result[1])
        return self._local(dep)

    async def _claim_with(self, pending: Pending, dep: Deployment, tokens: int) -> str | None:
        rpm, tpm = dep.config.rpm, dep.config.tpm
        limited = rpm is not None or tpm is not None
        subjects = [*pending.subjects, ("dep:" + dep.id, rpm, tpm, tokens)] if limited else pending.subjects
        pending.claiming = True
        try:
            result = await self.admit(subjects)
        finally:
            pending.claiming = False
        if result is None:  # Redis failed just now: the local admission of the accounts stands
            pending.at = -1
            return self._local(dep) if limited else None
        at, refused = result
        if refused is None:
            pending.at = at
            return None
        if refused.index < len(pending.subjects):
            pending.at = -1
            raise pending.refusal(refused)
        return _full(dep, refused)

    def _local(self, dep: Deployment) -> str | None:
        """Redis is down: this replica's share of the deployment's limits, counted here."""
        rpm, tpm, replicas = dep.config.rpm, dep.config.tpm, self.cluster.replicas
        routing = dep.routing
        if rpm is not None and routing.requests.total() >= max(1, rpm // replicas):
            return f"rpm limit: this replica's share {max(1, rpm // replicas)} of {rpm} is used (redis down)"
        if tpm is not None and routing.tokens.total() >= max(1, tpm // replicas):
            return f"tpm limit: this replica's share {max(1, tpm // replicas)} of {tpm} is used (redis down)"
        return None

    def settle(self, dep: Deployment, delta: int) -> None:
        """An attempt's real tokens minus what was reserved, into the current second."""
        if dep.config.tpm is not None:
            self.reconcile(("dep:" + dep.id,), int(self.cluster.wall()), delta)


def _full(dep: Deployment, refused: Refused) -> str:
    rpm, tpm = dep.config.rpm, dep.config.tpm
    if rpm is not None and refused.requests >= rpm:
        return f"rpm limit: {refused.requests} of {rpm} used this window (all replicas)"
    return f"tpm limit: {refused.tokens} of {tpm} used this window (all replicas)"


def share(limit: int | None, replicas: int) -> int | None:
    """This replica's share of ``limit`` among ``replicas`` (at least 1)."""
    return None if limit is None else max(1, math.floor(limit / replicas))
