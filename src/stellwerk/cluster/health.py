"""Breakers shared by every replica: an ejection or a recovery seen by one is applied by all.

    this replica's breaker opens  ─► HSET P breakers <dep> <open until, wall s> + PUBLISH (one write)
    ... closes                    ─► HDEL + PUBLISH
    a notice from another replica ─► force_open(until - now) / recover() here (not published again)
    every heartbeat (1 s)         ─► the open breakers in Redis are applied here too (a notice may be lost)

Half-open is local: each replica probes with one request of its own when the shared open time is over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stellwerk.telemetry import BreakerChanged, Event

from .node import Cluster, Notice

if TYPE_CHECKING:
    from stellwerk.routing.table import RoutingTable

__all__ = ["SharedHealth"]


class SharedHealth:
    """A listener of :class:`BreakerChanged` and the handler of ``breaker`` notices. ``clock``: the breakers'."""

    def __init__(self, cluster: Cluster, table: Callable[[], RoutingTable], clock: Callable[[], float]) -> None:
        self.cluster = cluster
        self._table = table
        self._clock = clock
        self._applying = False
        cluster.handlers["breaker"] = self.apply
        cluster.resyncs.append(self.resync)

    def __call__(self, event: Event) -> None:
        if self._applying or not isinstance(event, BreakerChanged):
            return
        cluster = self.cluster
        if not cluster.up:
            return
        dep = self._table().deployments.get(event.deployment)
        if event.new == "open" and dep is not None:
            until = cluster.wall() + max(0.0, dep.breaker.open_until - self._clock())
            cluster.send("HSET", cluster.key("breakers"), event.deployment, repr(until))
            cluster.notify("breaker", {"deployment": event.deployment, "until": until})
        elif event.new == "closed":
            cluster.send("HDEL", cluster.key("breakers"), event.deployment)
            cluster.notify("breaker", {"deployment": event.deployment, "until": None})

    def apply(self, notice: Notice) -> None:
        until = notice.get("until")
        self._set(str(notice.get("deployment")), None if until is None else float(until))

    def resync(self, flat: list[bytes]) -> None:
        for i in range(0, len(flat) - 1, 2):
            until = float(flat[i + 1])
            if until > self.cluster.wall():
                self._set(flat[i].decode(), until, only_closed=True)

    def _set(self, dep_id: str, until: float | None, only_closed: bool = False) -> None:
        dep = self._table().deployments.get(dep_id)
        if dep is None:
            return
        breaker = dep.breaker
        self._applying = True
        try:
            if until is None:
                breaker.recover()
            elif not only_closed or breaker.state.value == "closed":
                left = until - self.cluster.wall()
                if left > 0:
                    breaker.force_open(left)
        finally:
            self._applying = False
