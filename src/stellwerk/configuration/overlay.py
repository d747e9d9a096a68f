"""API edits as an overlay on the base configuration.

An edit names a deployment or a model, a field and its value. The current configuration is always the
base (the file, or the last whole config PUT) with every edit applied in order, so a changed file keeps the
API's edits on top of it, and ``GET /admin/config/diff`` shows them. An edit whose target the base no
longer has is dropped from the overlay (and the drop is reported by :func:`apply_edits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from stellwerk.config import Config

__all__ = ["Edit", "apply_edits"]

EDITABLE = {"deployment": frozenset({"weight", "enabled"}), "model": frozenset({"strategy_options"})}


class Edit(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["deployment", "model"]
    target: str
    """A deployment id or a model name."""
    field: str
    value: Any
    author: str | None = None


def apply_edits(base: Config, edits: Sequence[Edit]) -> tuple[Config, list[Edit]]:
    """``base`` with ``edits`` applied, and the edits that no longer apply (their target is gone)."""
    gone: list[Edit] = []
    models = list(base.models)
    for edit in edits:
        found = False
        for i, model in enumerate(models):
            if edit.kind == "model" and model.name == edit.target:
                models[i] = msgspec.structs.replace(model, **{edit.field: edit.value})
                found = True
            elif edit.kind == "deployment":
                deps = [msgspec.structs.replace(d, **{edit.field: edit.value}) if d.id == edit.target else d
                        for d in model.deployments]
                if any(d.id == edit.target for d in model.deployments):
                    models[i] = msgspec.structs.replace(model, deployments=deps)
                    found = True
        if not found:
            gone.append(edit)
    return msgspec.structs.replace(base, models=models), gone
