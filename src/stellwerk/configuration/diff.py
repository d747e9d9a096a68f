"""A structural diff of two configurations: models and deployments added, removed or changed, with fields."""

from __future__ import annotations

from typing import Any

import msgspec

from stellwerk.config import Config

__all__ = ["diff"]


def _changed(old: dict[str, Any], new: dict[str, Any], skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {k: {"from": old.get(k), "to": new.get(k)} for k in sorted(set(old) | set(new))
            if k not in skip and old.get(k) != new.get(k)}


def diff(old: Config, new: Config) -> dict[str, Any]:
    """``{"models": {"added", "removed", "changed"}, "deployments": {...}, "server": {...}}``; secrets are
    never shown (a changed ``api_key`` says only that it changed)."""
    a = {m["name"]: m for m in msgspec.to_builtins(old.models)}
    b = {m["name"]: m for m in msgspec.to_builtins(new.models)}
    deps_a = {d["id"]: (m, d) for m, model in a.items() for d in model["deployments"]}
    deps_b = {d["id"]: (m, d) for m, model in b.items() for d in model["deployments"]}
    changed_models = {name: fields for name in sorted(set(a) & set(b))
                      if (fields := _changed(a[name], b[name], frozenset({"deployments"})))}
    changed_deps = {}
    for dep_id in sorted(set(deps_a) & set(deps_b)):
        fields = _changed(deps_a[dep_id][1], deps_b[dep_id][1])
        if deps_a[dep_id][0] != deps_b[dep_id][0]:
            fields["model"] = {"from": deps_a[dep_id][0], "to": deps_b[dep_id][0]}
        for secret in ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "headers"):
            if secret in fields:
                fields[secret] = "changed"
        if fields:
            changed_deps[dep_id] = fields
    return {
        "models": {"added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)), "changed": changed_models},
        "deployments": {"added": sorted(set(deps_b) - set(deps_a)), "removed": sorted(set(deps_a) - set(deps_b)),
                        "changed": changed_deps},
        "server": _changed(msgspec.to_builtins(old.server), msgspec.to_builtins(new.server)),
    }
