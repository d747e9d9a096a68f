"""Key, team and configuration changes made on one replica, applied by every other on the notice.

    admin API on replica A ─► store ─► A's keyring ─► changed ─► PUBLISH {kind: key, record}
    replica B's subscriber ─► B's keyring.apply(record)      a revoked key is refused from then on

    an API edit on A (weight, drain, strategy options, rollback) ─► a version ─► PUBLISH {kind: config,
    overlay} ─► B applies the same edits on its own base (its file) as a version ``cluster:<A>:<number>``

Configuration notices carry the overlay of API edits only, never a config (it may hold credentials): a
whole config sent to one replica (``PUT /admin/config``) or a changed file stays that replica's base.

The record travels with the notice (its secret's hash, never the secret), so replicas need not read
the store for it. A notice lost while Redis was down is made up for by reloading keys on reconnect
(:meth:`KeyNotices.reload`) when the replicas share a store.
"""

from __future__ import annotations

import logging

import msgspec

from stellwerk.configuration.history import Version
from stellwerk.configuration.manager import ConfigManager
from stellwerk.configuration.overlay import Edit
from stellwerk.errors import ConfigError
from stellwerk.keys.keyring import Keyring
from stellwerk.state.records import KeyRecord, TeamRecord

from .node import Cluster, Notice

__all__ = ["ConfigNotices", "KeyNotices"]

log = logging.getLogger("stellwerk.cluster")


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


class ConfigNotices:
    """Publishes this replica's changed overlays (chaining the history's own ``on_record``) and adopts others'."""

    def __init__(self, cluster: Cluster, manager: ConfigManager) -> None:
        self.cluster = cluster
        self.manager = manager
        history = manager.history
        self._then = history.on_record
        self._overlay = manager.current.overlay
        history.on_record = self.recorded
        cluster.handlers["config"] = self.apply

    def recorded(self, version: Version) -> None:
        if self._then is not None:
            self._then(version)
        changed, self._overlay = version.overlay != self._overlay, version.overlay
        if changed and not version.source.startswith("cluster:"):
            self.cluster.notify("config", {"number": version.number, "author": version.author,
                                           "overlay": msgspec.to_builtins(version.overlay)})

    def apply(self, notice: Notice) -> None:
        overlay = msgspec.convert(notice["overlay"], tuple[Edit, ...])
        try:
            self.manager.adopt(overlay, f"cluster:{notice['from']}:{notice['number']}", notice.get("author"))
        except ConfigError as err:
            log.warning("the API edits of replica %s do not fit this replica's config; not applied: %s",
                        notice["from"], err)
