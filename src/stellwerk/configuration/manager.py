"""The configuration manager: every change to a running router goes through here and becomes a version.

- ``reload(base)``: a new base (the file changed, SIGHUP, ``POST /admin/config/reload``, ``PUT /admin/config``);
  the overlay of API edits is applied on top of it.
- ``edit(Edit)``: an API edit (a weight, strategy options, a deployment drained) joins the overlay.
- ``rollback(N)``: version N's base and overlay, applied again as a new version.
- ``dry_run(base)``: the diff it would make, and which models' routing would change; nothing is applied.

A change is validated whole before anything is applied (``Router.install`` builds the next routing table and
swaps it in one assignment), so a refused change leaves the running version as it was, with the error in
``history.last_error``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from stellwerk.config import Config
from stellwerk.errors import ConfigError

from .diff import diff
from .history import History, Version
from .overlay import Edit, apply_edits

if TYPE_CHECKING:
    from stellwerk.routing.router import Router

__all__ = ["ConfigManager"]

log = logging.getLogger("stellwerk.config")


class _Kept(msgspec.Struct, frozen=True, kw_only=True):
    """What the store keeps of a version (no config: it may hold credentials; the base is the file)."""

    number: int
    source: str
    author: str | None
    applied_at: float
    overlay: tuple[Edit, ...]


class ConfigManager:
    def __init__(self, router: Router, *, wall_clock: Callable[[], float] = time.time,
                 history: History | None = None) -> None:
        self._router = router
        self._wall_clock = wall_clock
        self._next: int | None = None
        """The lowest number the next version may have (after a restart: past the kept ones)."""
        self.history = history if history is not None else History()
        config = router.table.config
        self.history.record(Version(number=router.table.version, source="start", author=None,
                                    applied_at=wall_clock(), base=config, overlay=(), config=config))

    @property
    def current(self) -> Version:
        return self.history.current

    def reload(self, base: Config, source: str, author: str | None = None) -> Version:
        """A new base configuration, under the current overlay."""
        return self._apply(base, self.current.overlay, source, author)

    def edit(self, edit: Edit, source: str) -> Version:
        """An API edit: replaces an earlier edit of the same field of the same target."""
        overlay = [e for e in self.current.overlay if (e.kind, e.target, e.field) != (edit.kind, edit.target,
                                                                                      edit.field)]
        return self._apply(self.current.base, [*overlay, edit], source, edit.author)

    def set_weight(self, deployment_id: str, weight: float, author: str | None = None) -> Version:
        """A deployment's weight (``KeyError`` for an unknown deployment, ``ValueError`` out of 0-1000000)."""
        if not (0 <= weight <= 1e6):
            raise ValueError("weight must be between 0 and 1000000")
        return self._deployment_edit(deployment_id, "weight", weight, author)

    def set_enabled(self, deployment_id: str, enabled: bool, author: str | None = None) -> Version:
        """Drain a deployment (``False``: no new requests; those in flight finish) or bring it back."""
        return self._deployment_edit(deployment_id, "enabled", enabled, author)

    def update_strategy_options(self, model: str, options: Mapping[str, Any], author: str | None = None) -> Version:
        """A model's strategy options (e.g. a canary from 5% to 50%). ``ValueError`` when its strategy's options
        cannot change at run time; ``ConfigError`` when they are invalid; ``ModelNotFoundError``."""
        current = self._router.table.model(model).config
        if not self._router.registries.strategies[current.strategy].changeable:
            raise ValueError(f"strategy '{current.strategy}' cannot change its options at run time; change the config")
        return self.edit(Edit(kind="model", target=model, field="strategy_options", value=dict(options),
                              author=author), source=f"api:strategy_options {model}")

    def _deployment_edit(self, dep_id: str, field: str, value: Any, author: str | None) -> Version:
        if dep_id not in self._router.table.config_deployments:
            raise KeyError(dep_id)
        return self.edit(Edit(kind="deployment", target=dep_id, field=field, value=value, author=author),
                         source=f"api:{field} {dep_id}")

    def persist(self, put: Callable[[int, bytes], None], latest: bytes | None) -> Version | None:
        """Keep every version from now on with ``put(number, doc)``; first apply the API edits of ``latest``
        (the newest kept version: a restart keeps API edits, under the file as it is now). Credentials are
        never kept: a version's doc holds its number, source, author, time and edits."""
        restored = None
        if latest is not None:
            kept = msgspec.json.decode(latest, type=_Kept)
            self._next = kept.number + 1  # numbers go on across restarts
            try:
                restored = self._apply(self.current.base, kept.overlay, f"restore:{kept.number}", None)
            except ConfigError as err:  # the file changed so that the edits no longer fit: it wins, loudly
                log.warning("the API edits of version %d do not fit the config any more; not restored: %s",
                            kept.number, err)
        self.history.on_record = lambda version: put(version.number, msgspec.json.encode(_Kept(
            number=version.number, source=version.source, author=version.author, applied_at=version.applied_at,
            overlay=version.overlay)))
        self.history.on_record(self.current)
        return restored

    def adopt(self, overlay: Sequence[Edit], source: str, author: str | None = None) -> Version:
        """Another replica's API edits, applied on this replica's own base (``server.redis`` notices)."""
        return self._apply(self.current.base, overlay, source, author)

    def rollback(self, number: int, author: str | None = None) -> Version:
        version = self.history.get(number)
        if version is None:
            raise KeyError(number)
        return self._apply(version.base, version.overlay, f"rollback:{number}", author)

    def dry_run(self, base: Config) -> dict[str, Any]:
        """What ``reload(base)`` would change (validated; nothing applied)."""
        from stellwerk.compose import validate

        config, gone = apply_edits(base, self.current.overlay)
        validate(config, self._router.registries)
        changes = diff(self.current.config, config)
        touched = set(changes["models"]["changed"])
        deployments = changes["deployments"]
        for dep_id in [*deployments["added"], *deployments["removed"], *deployments["changed"]]:
            for model in (*config.models, *self.current.config.models):
                if any(d.id == dep_id for d in model.deployments):
                    touched.add(model.name)
        names = sorted({m.name for m in config.models} | {m.name for m in self.current.config.models})
        return {"valid": True, "diff": changes, "edits_dropped": [e.target for e in gone],
                "models": {name: {"routing_changes": name in touched or name in changes["models"]["added"]}
                           for name in names}}

    def _apply(self, base: Config, overlay: Sequence[Edit], source: str, author: str | None) -> Version:
        config, gone = apply_edits(base, overlay)
        kept = tuple(e for e in overlay if e not in gone)
        try:
            table = self._router.install(config, self._next)
        except ConfigError as err:
            self.history.last_error = str(err)
            raise
        version = Version(number=table.version, source=source, author=author, applied_at=self._wall_clock(),
                          base=base, overlay=kept, config=config)
        self.history.record(version)
        return version
