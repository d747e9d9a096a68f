"""Key and team changes made on one replica, applied by every other within the notice's travel time.

    admin API on replica A ─► store ─► A's keyring ─► changed ─► PUBLISH {kind: key, record}
    replica B's subscriber ─► B's keyring.apply(record)      a revoked key is refused from then on

The record travels with the notice (its secret's hash, never the secret), so replicas need not read
the store for it. A notice lost while Redis was down is made up for by reloading keys on reconnect
(:meth:`KeyNotices.reload`) when the replicas share a store.
"""

from __future__ import annotations

import msgspec

from stellwerk.keys.keyring import Keyring
from stellwerk.state.records import KeyRecord, TeamRecord

from .node import Cluster, Notice

__all__ = ["KeyNotices"]


class KeyNotices:
    def __init__(self, cluster: Cluster, keyring: Keyring) -> None:
        self.cluster = cluster
        self.keyring = keyring
        keyring.changed = self.changed
        cluster.handlers["key"] = self.apply
        cluster.handlers["team"] = self.apply

    def changed(self, record: KeyRecord | TeamRecord) -> None:
        kind = "team" if isinstance(record, TeamRecord) else "key"
        self.cluster.notify(kind, {"record": msgspec.to_builtins(record)})

    def apply(self, notice: Notice) -> None:
        kind: type[KeyRecord | TeamRecord] = TeamRecord if notice["kind"] == "team" else KeyRecord
        record = msgspec.convert(notice["record"], kind)
        if isinstance(record, KeyRecord) and record.source == "config":
            return  # declared in each replica's own config file
        self.keyring.apply(record)
