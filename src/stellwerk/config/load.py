"""Loading a configuration: YAML, ``${ENV_VAR}`` interpolation, strict validation.

>>> config = load_file("stellwerk.yaml")
>>> config = load_dict({"models": [...]})

Every failure raises :class:`~stellwerk.errors.ConfigError` whose ``problems``
name the key (``models[0].deployments[1].timeout``) and what was expected.
Secrets substituted from the environment never appear in those messages.

This module knows the schema only. Which providers and strategies exist is
the registries' business (:mod:`stellwerk.compose`); pass their ``check`` to
have their rules reported with the same redaction (``stellwerk.load_file``
does).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from stellwerk.errors import ConfigError

from . import hygiene
from .schema import Config

__all__ = ["Check", "check", "interpolate", "load_dict", "load_file", "load_text"]

Check = Callable[[Config], list[str]]
"""More rules for a config that passed the schema (the registries' ``check``): problems as ``key: expected``."""

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")



class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML without implicit timestamps: ``api_version: 2024-10-21`` stays a string."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def interpolate(
    value: Any,
    env: Mapping[str, str],
    path: str = "",
    problems: list[str] | None = None,
    substituted: set[str] | None = None,
) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string; ``$$`` is a literal ``$``.

    Values taken from the environment are added to ``substituted`` so that error
    messages can redact them (they are often secrets).
    """
    problems = [] if problems is None else problems
    substituted = set() if substituted is None else substituted
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in env:
                substituted.add(env[name])
                return env[name]
            if default is not None:
                return default
            problems.append(
                f"{path or '<root>'}: environment variable {name} is not set (use ${{{name}:-default}} for a default)")
            return ""
        return _VAR.sub(sub, value) if "$" in value else value
    if isinstance(value, dict):
        return {k: interpolate(v, env, f"{path}.{k}" if path else str(k), problems, substituted)
                for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env, f"{path}[{i}]", problems, substituted) for i, v in enumerate(value)]
    return value


def _msgspec_problem(err: msgspec.ValidationError) -> str:
    text = str(err)
    # msgspec: "Expected `int`, got `str` - at `$.models[0].retries`"
    m = re.match(r"^(.*?)(?: - at `\$\.?(.*)`)?$", text, re.S)
    if m and m.group(2) is not None:
        message, key = m.group(1), m.group(2)
        unknown = re.match(r"Object contains unknown field `(.+)`", message)
        if unknown:
            return f"{key + '.' if key else ''}{unknown.group(1)}: unknown key"
        return f"{key or '<root>'}: {message[0].lower() + message[1:]}"
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        return f"{unknown.group(1)}: unknown key"
    missing = re.match(r"Object missing required field `(.+)`", text)
    if missing:
        return f"{missing.group(1)}: required key is missing"
    return text


def _fix_missing(problem: str) -> str:
    m = re.match(r"^(.*): object missing required field `(.+)`$", problem)
    if m:
        return f"{m.group(1)}.{m.group(2)}: required key is missing"
    return problem


def check(config: Config) -> list[str]:
    """Cross-field rules of the schema; returns the problems found (empty when the config is valid)."""
    problems: list[str] = []
    seen_models: dict[str, int] = {}
    seen_ids: dict[str, str] = {}
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        if model.name in seen_models:
            problems.append(f"{where}.name: '{model.name}' is already used by models[{seen_models[model.name]}]")
        seen_models.setdefault(model.name, i)
        for j, dep in enumerate(model.deployments):
            dwhere = f"{where}.deployments[{j}]"
            if dep.id in seen_ids:
                problems.append(f"{dwhere}.id: '{dep.id}' is already used by {seen_ids[dep.id]}")
            seen_ids.setdefault(dep.id, dwhere)
            if dep.api_base is not None and not re.match(r"^https?://[^/\s]+", dep.api_base):
                problems.append(f"{dwhere}.api_base: expected an http:// or https:// URL, got '{dep.api_base}'")
            for name in dep.headers:
                if not re.match(r"^[A-Za-z0-9-]+$", name):
                    problems.append(f"{dwhere}.headers: '{name}' is not a valid header name")
            if dep.resume is not None and dep.resume not in ("prefill", "instruct", "off"):
                problems.append(f"{dwhere}.resume: expected prefill, instruct or off, got '{dep.resume}'")
    names = {m.name for m in config.models}
    problems.extend(hygiene.problems(config))  # values sent on the wire: header injection, proxies, CA files
    for i, model in enumerate(config.models):
        for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for k, target in enumerate(getattr(model, key)):
                if target not in names:
                    problems.append(f"models[{i}].{key}[{k}]: no model named '{target}' "
                                    f"(expected one of {', '.join(sorted(names))})")
                elif target == model.name:
                    problems.append(f"models[{i}].{key}[{k}]: a model cannot fall back to itself")
        if model.health_check is not None and model.health_check.kind not in ("models", "chat"):
            problems.append(f"models[{i}].health_check.kind: expected 'models' or 'chat', got '{model.health_check.kind}'")
        if model.cache.threshold is not None and model.cache.mode != "semantic":
            problems.append(f"models[{i}].cache.threshold: only for mode 'semantic', got mode '{model.cache.mode}'")
    for key, url in (("server.cache.url", config.server.cache.url), ("server.redis", config.server.redis)):
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            problems.append(f"{key}: expected a redis://, rediss:// or unix:// URL, got '{url}'")
    if config.server.redis is not None and config.server.redis.startswith("rediss://"):
        problems.append("server.redis: rediss:// (TLS) is not supported for shared state yet; use redis:// or unix://")
    problems.extend(_key_problems(config))
    return problems


def _key_problems(config: Config) -> list[str]:
    """``server.store`` and the declared ``keys`` (names unique, scopes known, times RFC 3339)."""
    import datetime

    from stellwerk.state.url import store_problem

    problems: list[str] = []
    if config.server.store is not None:
        problem = store_problem(config.server.store)
        if problem is not None:
            problems.append(f"server.store: {problem}")
    seen: dict[str, int] = {}
    for i, key in enumerate(config.keys):
        if key.name in seen:
            problems.append(f"keys[{i}].name: '{key.name}' is already used by keys[{seen[key.name]}]")
        seen.setdefault(key.name, i)
        for scope in key.scopes:
            if scope not in ("inference", "admin"):
                problems.append(f"keys[{i}].scopes: expected 'inference' or 'admin', got '{scope}'")
        if key.expires_at is not None:
            try:
                zone = datetime.datetime.fromisoformat(key.expires_at).tzinfo
            except ValueError:
                zone = None
            if zone is None:
                problems.append(f"keys[{i}].expires_at: expected an RFC 3339 time with a zone, like "
                                "2026-12-31T23:59:59Z")
    return problems


def load_dict(data: Any, env: Mapping[str, str] | None = None, source: str = "config",
              more: Check | None = None) -> Config:
    """Validate a parsed config (a dict), interpolating ``${VAR}`` from ``env`` (default: os.environ).

    ``more``: further rules (the registries' check), reported like the schema's own.
    """
    if not isinstance(data, dict):
        raise ConfigError([f"<root>: expected a mapping with a 'models' key, got {type(data).__name__}"], source)
    problems: list[str] = []
    substituted: set[str] = set()
    data = interpolate(data, os.environ if env is None else env, "", problems, substituted)
    if problems:
        raise ConfigError(problems, source)
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as err:
        raise ConfigError(_redact([_fix_missing(_msgspec_problem(err))], substituted), source) from None
    problems = check(config) + (more(config) if more is not None else [])
    if problems:
        raise ConfigError(_redact(problems, substituted), source)
    return config


def _redact(problems: list[str], secrets: set[str]) -> list[str]:
    """Values from the environment never appear in error messages."""
    from stellwerk.redact import redact

    return [redact(p, sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)) for p in problems]


def load_text(text: str, env: Mapping[str, str] | None = None, source: str = "config",
              more: Check | None = None) -> Config:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<yaml>"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{where}: invalid YAML: {problem}"], source) from None
    return load_dict(data, env, source, more)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None, more: Check | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{p}: cannot read: {err.strerror or err}"], str(p)) from None
    return load_text(text, env, str(p), more)
