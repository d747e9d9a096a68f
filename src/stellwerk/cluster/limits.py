"""Global rpm and tpm of keys, teams and deployments: one ADMIT script per admission, RECONCILE at completion.

    keys and teams:  Limits stage ─► local admit (per-replica state: max_parallel, budgets, headers)
                                  ─► admit_accounts(...)  one round trip: every account checked, then counted
                     the answer   ─► reconcile: real tokens replace the reservation (failure: reservation back)
    deployments:     attempt loop ─► claim(deployment)   one round trip; refused: the deployment is skipped
                     lease.ok     ─► settle(deployment, tokens - reserved)

While Redis is down (or fails mid-call) nothing waits on it: keys and teams are checked locally against
their limits divided by the replicas last seen alive (:meth:`local_view`), deployments against the
same share of their own limits, counted by this replica. No request fails because Redis is gone.
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

__all__ = ["Refused", "SharedLimits"]

R = TypeVar("R", KeyRecord, TeamRecord)


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

    # -- keys and teams -----------------------------------------------------------------------------
    async def admit_accounts(self, subjects: Sequence[tuple[str, int | None, int | None]],
                             tokens: int) -> tuple[int, Refused | None] | None:
        """Check and count ``(account, rpm, tpm)`` subjects at once: ``(second, None)`` when admitted (the
        second to reconcile in), ``(second, Refused)`` when not, None when Redis cannot answer."""
        cluster = self.cluster
        now = int(cluster.wall())
        args: list[int] = [now, tokens]
        for _, rpm, tpm in subjects:
            args += (rpm or 0, tpm or 0)
        reply = await cluster.run(ADMIT, [cluster.key("a:" + name) for name, _, _ in subjects], tuple(args))
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
            view = msgspec.structs.replace(record, rpm=_share(record.rpm, replicas), tpm=_share(record.tpm, replicas),
                                           max_parallel=_share(record.max_parallel, replicas))
            cached = self._views[name] = (record, replicas, view)
        shared = cached[2]
        assert isinstance(shared, type(record))
        return shared

    # -- deployments --------------------------------------------------------------------------------
    async def claim(self, dep: Deployment, tokens: int) -> str | None:
        """Count one attempt on ``dep`` against its global rpm and tpm; why not (a filter's reason) or None."""
        rpm, tpm = dep.config.rpm, dep.config.tpm
        if rpm is None and tpm is None:
            return None
        if self.cluster.up:
            result = await self.admit_accounts([("dep:" + dep.id, rpm, tpm)], tokens)
            if result is not None:
                refused = result[1]
                if refused is None:
                    return None
                if rpm is not None and refused.requests >= rpm:
                    return f"rpm limit: {refused.requests} of {rpm} used this window (all replicas)"
                return f"tpm limit: {refused.tokens} of {tpm} used this window (all replicas)"
        replicas = self.cluster.replicas  # Redis is down: this replica's share, counted here
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


def _share(limit: int | None, replicas: int) -> int | None:
    return None if limit is None else max(1, math.floor(limit / replicas))
