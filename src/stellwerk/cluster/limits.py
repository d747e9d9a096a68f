"""Global rpm and tpm of keys, teams and deployments: drawn from leases, asked of Redis in rounds.

    limits stage   local admit (per replica: max_parallel, budgets, headers); the key's and team's shared
                   accounts become the request's *pending* claim (:mod:`.admission`)
    attempt loop   claim(deployment): the pending accounts and the deployment are drawn together
                   (:meth:`.leases.Leases.draw`): from the allowances this replica holds (no round trip),
                   the accounts lacking asking Redis for a lease in one round (:mod:`.rounds`); the
                   deployment full ─► skipped (the pending accounts stay pending for the next one); an
                   account full ─► 429 naming it
    completion     settle: the real tokens replace the reservation (a failure gives the reservation back),
                   into the allowance in hand, or to Redis with the next round

Redis counts what it grants (a lease), not what is spent; what a replica does not spend goes back when the
lease expires (``LEASE`` s), so the replicas never admit more than a limit and, near it, at most briefly
less (see :mod:`.leases`). A request that never reaches a deployment (a cache hit) counts its pending
accounts after the fact. While Redis is down (or fails mid-call) nothing waits on it: keys and teams are
checked locally against their limits divided by the replicas last seen alive (:meth:`local_view`, from the
limits stage on; allowances a request took before stand), deployments spend the allowances in hand until
they expire, then the same share of their own limits, counted by this replica. No request fails because
Redis is gone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import msgspec

from stellwerk.state.records import KeyRecord, TeamRecord

from .leases import Leases
from .node import Cluster
from .resp import bulk
from .rounds import Account, Rounds

if TYPE_CHECKING:
    from stellwerk.routing.deployment import Deployment


__all__ = ["Refused", "SharedLimits", "Subject"]

R = TypeVar("R", KeyRecord, TeamRecord)
Subject = tuple[str, int | None, int | None, int]
"""An account, its rpm and tpm (None: unlimited) and the tokens this request reserves there."""


class Refused:
    """The account that was full: its index among the subjects, and its requests and tokens in the window."""

    __slots__ = ("index", "requests", "tokens")

    def __init__(self, index: int, requests: int, tokens: int) -> None:
        self.index = index
        self.requests = requests
        self.tokens = tokens


class SharedLimits:
    """Windows of accounts in Redis (``P w:key:<id>``, ``P w:team:<name>``, ``P w:dep:<id>``), drawn from
    leases (:mod:`.leases`) granted in rounds (:mod:`.rounds`)."""

    def __init__(self, cluster: Cluster) -> None:
        from .admission import PENDING  # the limits stage's module imports this one

        self.cluster = cluster
        self.rounds = Rounds(cluster)
        self.leases = Leases(self.rounds)
        cluster.closing.append(self.leases.close)
        self._pending = PENDING
        self._views: dict[str, tuple[object, int, KeyRecord | TeamRecord]] = {}
        self._deps: dict[str, Account] = {}

    @property
    def up(self) -> bool:
        return self.cluster.up

    async def admit(self, subjects: Sequence[Subject]) -> tuple[int, Refused | None] | None:
        """Check and count every subject at once: ``(second, None)`` when admitted (the second the first one
        counted in), ``(second, Refused)`` when not (nothing counted), None when Redis cannot answer."""
        rounds = self.rounds
        ats, full, requests, tokens = await self.leases.draw(
            [rounds.account(name, rpm, tpm) for name, rpm, tpm, _ in subjects], [s[3] for s in subjects])
        if full < 0:
            return None
        return int(self.cluster.wall()) if full else ats[0], (Refused(full - 1, requests, tokens) if full else None)

    def reconcile(self, names: Sequence[str], at: int, delta: int) -> None:
        """Add ``delta`` tokens to the accounts' second ``at`` in Redis (with the next round; lost while down)."""
        for name in names:
            self.rounds.reconcile(bulk(self.cluster.key("w:" + name).encode()), at, 0, delta)

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
    def _account(self, dep: Deployment) -> Account:
        account = self._deps.get(dep.id)
        config = dep.config
        if account is None or account.rpm != config.rpm or account.tpm != config.tpm:
            if len(self._deps) > 4096:
                self._deps.clear()
            account = self._deps[dep.id] = self.rounds.account("dep:" + dep.id, config.rpm, config.tpm)
        return account

    async def claim(self, dep: Deployment, tokens: int) -> str | None:
        """Count one attempt on ``dep`` (and the request's pending accounts) against the global windows; why
        the deployment cannot take it (a filter's reason) or None. Raises the 429 of a full account."""
        pending = self._pending.get()
        if pending is not None and (pending.ats is not None or pending.claiming):
            pending = None  # counted already, or by a parallel attempt (a hedge) right now
        config = dep.config
        limited = config.rpm is not None or config.tpm is not None
        if pending is None:
            if not limited:
                return None
            ats, full, requests, used = await self.leases.draw((self._account(dep),), (tokens,))
            if full < 0:  # Redis is down or failed just now, and no allowance in hand
                return self._local(dep)
            return _full(dep, requests, used) if full else None
        if limited:
            accounts, needs = [*pending.accounts, self._account(dep)], [*pending.reserves, tokens]
        else:
            accounts, needs = pending.accounts, pending.reserves
        pending.claiming = True
        try:
            ats, full, requests, used = await self.leases.draw(accounts, needs)
        finally:
            pending.claiming = False
        n = len(pending.accounts)
        if full > n:  # the deployment is full: the accounts stay pending for the next one
            return _full(dep, requests, used)
        if full > 0:
            pending.ats = [-1] * n
            raise pending.refusal(Refused(full - 1, requests, used))
        pending.ats = ats[:n]  # -1 where Redis could not answer: the local admission stands there
        return self._local(dep) if full < 0 and limited and ats[n] < 0 else None

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
        if dep.config.tpm is not None and delta:
            self.leases.settle(self._account(dep).key, -1, 0, delta)


def _full(dep: Deployment, requests: int, tokens: int) -> str:
    rpm, tpm = dep.config.rpm, dep.config.tpm
    if rpm is not None and requests >= rpm:
        return f"rpm limit: {requests} of {rpm} used this window (all replicas)"
    return f"tpm limit: {tokens} of {tpm} used this window (all replicas)"


def share(limit: int | None, replicas: int) -> int | None:
    """This replica's share of ``limit`` among ``replicas`` (at least 1)."""
    return None if limit is None else max(1, math.floor(limit / replicas))
