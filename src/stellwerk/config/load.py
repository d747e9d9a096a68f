"""Loading a configuration: YAML, ``${ENV_VAR}`` interpolation, strict validation.

>>> config = load_file("stellwerk.yaml")
>>> config = load_dict({"models": [...]})

Every failure raises :class:`~stellwerk.errors.ConfigError` whose ``problems``
name the key (``models[0].deployments[1].timeout``) and what was expected.
Secrets substituted from the environment never appear in those messages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from stellwerk.errors import ConfigError

from . import hygiene
from .schema import Config, DeploymentConfig

__all__ = ["check", "interpolate", "load_dict", "load_file", "load_text"]

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


def check(
    config: Config,
    providers: Iterable[str] | None = None,
    strategies: Iterable[str] | None = None,
) -> list[str]:
    """Cross-field rules; returns the problems found (empty when the config is valid)."""
    problems: list[str] = []
    known_providers = set(providers) if providers is not None else None
    known_strategies = set(strategies) if strategies is not None else None
    seen_models: dict[str, int] = {}
    seen_ids: dict[str, str] = {}
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        if model.name in seen_models:
            problems.append(f"{where}.name: '{model.name}' is already used by models[{seen_models[model.name]}]")
        seen_models.setdefault(model.name, i)
        if known_strategies is not None and model.strategy not in known_strategies:
            problems.append(f"{where}.strategy: expected one of {', '.join(sorted(known_strategies))}, got '{model.strategy}'")
        for j, dep in enumerate(model.deployments):
            dwhere = f"{where}.deployments[{j}]"
            if dep.id in seen_ids:
                problems.append(f"{dwhere}.id: '{dep.id}' is already used by {seen_ids[dep.id]}")
            seen_ids.setdefault(dep.id, dwhere)
            if known_providers is not None and dep.provider not in known_providers:
                problems.append(f"{dwhere}.provider: expected one of {', '.join(sorted(known_providers))}, got '{dep.provider}'")
            if dep.api_base is not None and not re.match(r"^https?://[^/\s]+", dep.api_base):
                problems.append(f"{dwhere}.api_base: expected an http:// or https:// URL, got '{dep.api_base}'")
            if dep.provider == "azure" and dep.api_base is None:
                problems.append(f"{dwhere}.api_base: required for provider 'azure' (https://RESOURCE.openai.azure.com)")
            for name in dep.headers:
                if not re.match(r"^[A-Za-z0-9-]+$", name):
                    problems.append(f"{dwhere}.headers: '{name}' is not a valid header name")
            if known_providers is not None and dep.provider in known_providers:
                probes = model.health_check is not None and model.health_check.kind == "models"
                problems.extend(f"{dwhere}.{p}" for p in _provider_problems(dep, probes))
    names = {m.name for m in config.models}
    problems.extend(hygiene.problems(config))  # values sent on the wire: header injection, proxies, CA files
    problems.extend(_check_strategies(config, names, known_strategies))
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
        for j, dep in enumerate(model.deployments):
            if dep.resume is not None and dep.resume not in ("prefill", "instruct", "off"):
                problems.append(f"models[{i}].deployments[{j}].resume: expected prefill, instruct or off, "
                                f"got '{dep.resume}'")
    return problems


def _provider_problems(dep: DeploymentConfig, probes_models: bool) -> list[str]:
    from stellwerk.providers import deployment_problems

    return deployment_problems(dep, probes_models)


def _check_strategies(config: Config, names: set[str], known: set[str] | None) -> list[str]:
    """Each model's ``strategy_options`` against its strategy's options type."""
    from stellwerk.routing.strategies import parse_options
    from stellwerk.routing.task import TaskOptions
    from stellwerk.routing.task import check as check_task

    problems: list[str] = []
    for i, model in enumerate(config.models):
        where = f"models[{i}].strategy_options"
        if known is not None and model.strategy not in known:
            continue  # reported already
        if model.strategy == "task":
            try:
                options = msgspec.convert(model.strategy_options, TaskOptions)
            except msgspec.ValidationError as err:
                problem = _fix_missing(_msgspec_problem(err))
                at_root = problem.startswith("<root>")
                problems.append(f"{where}{problem.removeprefix('<root>')}" if at_root else f"{where}.{problem}")
                continue
            problems.extend(check_task(options, where))
            ids = {d.id for d in model.deployments}
            for route in options.routes:
                if route.target is not None and route.target not in names:
                    problems.append(f"{where}.routes: route '{route.name}' targets unknown model '{route.target}'")
                elif route.target == model.name:
                    problems.append(f"{where}.routes: route '{route.name}' targets its own model")
                for dep in route.deployments or ():
                    if dep not in ids:
                        problems.append(f"{where}.routes: route '{route.name}' names unknown deployment '{dep}'")
            continue
        try:
            parsed = parse_options(model.strategy, model.strategy_options, where)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        variants = getattr(parsed, "variants", None)
        if variants is not None:
            ids = {d.id for d in model.deployments}
            for variant in variants:
                for dep in variant.deployments:
                    if dep not in ids:
                        problems.append(f"{where}.variants: variant '{variant.name}' names unknown deployment '{dep}'")
    return problems


def _defaults() -> tuple[list[str], list[str]]:
    from stellwerk.providers import provider_names
    from stellwerk.routing.strategies import strategy_names

    return provider_names(), [*strategy_names(), "task"]


def load_dict(data: Any, env: Mapping[str, str] | None = None, source: str = "config") -> Config:
    """Validate a parsed config (a dict), interpolating ``${VAR}`` from ``env`` (default: os.environ)."""
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
    providers, strategies = _defaults()
    problems = check(config, providers, strategies)
    if problems:
        raise ConfigError(_redact(problems, substituted), source)
    return config


def _redact(problems: list[str], secrets: set[str]) -> list[str]:
    """Values from the environment never appear in error messages."""
    from stellwerk.providers.redact import redact

    return [redact(p, sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True)) for p in problems]


def load_text(text: str, env: Mapping[str, str] | None = None, source: str = "config") -> Config:
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<yaml>"
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"{where}: invalid YAML: {problem}"], source) from None
    return load_dict(data, env, source)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{p}: cannot read: {err.strerror or err}"], str(p)) from None
    return load_text(text, env, str(p))
