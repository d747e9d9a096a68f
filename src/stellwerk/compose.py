"""The composition root: registries of providers and strategies, checked against a config.

``config/`` knows only the schema. Which ``provider`` and ``strategy`` names
exist, and what each requires of its deployments and options, is decided
here, from registries that are injected (defaults: everything in this
package). A user adds a provider adapter or a strategy without editing
Stellwerk::

    registries = default_registries().with_provider("acme", AcmeAdapter).with_strategy(
        "random", StrategySpec(RandomOptions, RandomStrategy))
    router = Router(config, registries=registries)       # validates the config against them
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from stellwerk.config import Config, DeploymentConfig, ModelConfig
from stellwerk.config import load as _load
from stellwerk.errors import ConfigError
from stellwerk.providers import BUILTIN_PROVIDERS, Adapter, ProviderSpec
from stellwerk.routing.strategies import BUILTIN, Strategy, StrategySpec, build_strategy, parse_options
from stellwerk.routing.strategies.base import Clock
from stellwerk.state import Cache, MemoryCache

if TYPE_CHECKING:
    from stellwerk.pipeline.cache import ResponseCache

__all__ = ["SEMANTIC_EMBEDDER", "ProviderSpec", "Registries", "StrategySpec", "build_cache", "build_response_cache",
           "default_registries", "load_dict", "load_file", "load_text", "semantic_embed", "validate"]

SEMANTIC_EMBEDDER = 64
"""Dimensions of the WordLlama vectors the semantic cache compares (64, 128 or 256; bench/RESULTS.md)."""


@dataclass(frozen=True)
class Registries:
    """Provider adapters and routing strategies by their config names. Immutable: ``with_*`` returns a new one."""

    providers: Mapping[str, ProviderSpec]
    strategies: Mapping[str, StrategySpec]
    _adapters: dict[str, Adapter] = field(default_factory=dict, compare=False, repr=False)

    def with_provider(self, name: str, factory: Callable[[], Adapter],
                      check: Callable[[DeploymentConfig, bool], list[str]] | None = None) -> Registries:
        """A provider ``name`` whose adapter ``factory()`` builds (``check``: its config rules, keys relative
        to the deployment; the flag says whether the model probes its models endpoint)."""
        return Registries(MappingProxyType({**self.providers, name: ProviderSpec(factory, check)}), self.strategies)

    def with_strategy(self, name: str, spec: StrategySpec) -> Registries:
        return Registries(self.providers, MappingProxyType({**self.strategies, name: spec}))

    def adapter(self, provider: str) -> Adapter:
        """The adapter of a provider (one per registry: adapters are pure translation, without state)."""
        adapter = self._adapters.get(provider)
        if adapter is None:
            adapter = self._adapters[provider] = self.providers[provider].factory()
        return adapter

    def strategy(self, name: str, options: Mapping[str, Any] | msgspec.Struct | None, *,
                 rng: random.Random, clock: Clock) -> Strategy:
        return build_strategy(name, options, rng=rng, clock=clock, specs=self.strategies)

    def parse_options(self, name: str, options: Mapping[str, Any] | None, where: str = "strategy_options",
                      ) -> msgspec.Struct:
        return parse_options(name, options, where, self.strategies)

    def check(self, config: Config) -> list[str]:
        """The rules that need the registries: known providers and strategies, their own checks."""
        problems: list[str] = []
        names = frozenset(m.name for m in config.models)
        for i, model in enumerate(config.models):
            problems.extend(self._model_problems(model, f"models[{i}]", names))
        if not problems:  # every provider is known: the URLs each deployment calls can be worked out
            problems.extend(self._origin_problems(config))
        return problems

    def _origin_problems(self, config: Config) -> list[str]:
        """Deployments calling one origin must agree on ``proxy`` and ``ca_file`` (one pool per origin)."""
        from stellwerk.outbound import origin_conflicts

        deployments = [d for m in config.models for d in m.deployments]
        if all(d.proxy is None and d.ca_file is None for d in deployments):
            return []  # one route for every origin: nothing can disagree
        pairs = []
        for dep in deployments:
            try:
                pairs.append((dep, self.adapter(dep.provider).endpoint(dep)))
            except ConfigError:
                continue  # e.g. missing AWS credentials: reported when the router starts
        return origin_conflicts(pairs)

    def check_model(self, model: ModelConfig, where: str, names: frozenset[str],
                    options: Mapping[str, Any] | None = None) -> list[str]:
        """``model``'s strategy options (or ``options`` instead of them) against its strategy."""
        spec = self.strategies.get(model.strategy)
        if spec is None:
            return [f"{where}.strategy: expected one of {', '.join(sorted(self.strategies))}, got '{model.strategy}'"]
        at = f"{where}.strategy_options" if where else "strategy_options"
        try:
            parsed = parse_options(model.strategy, model.strategy_options if options is None else options, at,
                                   self.strategies)
        except ConfigError as err:
            return list(err.problems)
        return spec.check(parsed, model, names, at) if spec.check is not None else []

    def _model_problems(self, model: ModelConfig, where: str, names: frozenset[str]) -> list[str]:
        problems = self.check_model(model, where, names)
        probes = model.health_check is not None and model.health_check.kind == "models"
        for j, dep in enumerate(model.deployments):
            spec = self.providers.get(dep.provider)
            dwhere = f"{where}.deployments[{j}]"
            if spec is None:
                problems.append(f"{dwhere}.provider: expected one of {', '.join(sorted(self.providers))}, "
                                f"got '{dep.provider}'")
            elif spec.check is not None:
                problems.extend(f"{dwhere}.{p}" for p in spec.check(dep, probes))
        return problems


def default_registries() -> Registries:
    """Every provider and strategy of this package, ``task`` included."""
    from stellwerk.routing.task.spec import task_spec

    return Registries(BUILTIN_PROVIDERS, MappingProxyType({**BUILTIN, "task": task_spec()}))


def build_cache(config: Config, clock: Clock) -> Cache:
    """The response cache's backend that ``server.cache`` names."""
    server = config.server
    options = server.cache
    if options.backend == "redis" or (options.backend is None and server.redis is not None):
        from stellwerk.state.redis import RedisCache

        url = options.url or server.redis or "redis://127.0.0.1:6379/0"
        return RedisCache(url, clock=clock, prefix=options.prefix, timeout=options.timeout,
                          retry_after=options.retry_after)
    return MemoryCache(clock, options.max_bytes)


def semantic_embed(dim: int = SEMANTIC_EMBEDDER) -> Callable[[str], Sequence[float]]:
    """The semantic cache's embedder: WordLlama from the files in its wheel (offline), one text to a vector."""
    from stellwerk.routing.task.embedders import load_wordllama

    embedder = load_wordllama(dim)
    return lambda text: embedder.embed([text])[0]


def build_response_cache(config: Config, backend: Cache, clock: Clock,
                         embed: Callable[[str], Sequence[float]] | None = None) -> ResponseCache | None:
    """The ``cache`` middleware when some model caches (None otherwise: nothing on the request path)."""
    modes = {model.cache.mode for model in config.models}
    if modes <= {"off"}:
        return None
    from stellwerk.pipeline.cache import ResponseCache
    if embed is None and "semantic" in modes:
        embed = semantic_embed()
    return ResponseCache(backend, clock=clock, embed=embed)


def validate(config: Config, registries: Registries, source: str = "config") -> Config:
    """``config`` when the registries accept it; a :class:`ConfigError` listing every problem otherwise."""
    problems = registries.check(config)
    if problems:
        raise ConfigError(problems, source)
    return config


def load_dict(data: Any, env: Mapping[str, str] | None = None, source: str = "config",
              registries: Registries | None = None) -> Config:
    """A config from a parsed dict, checked against the schema and the registries (default: the built-in ones)."""
    return _load.load_dict(data, env, source, (registries or default_registries()).check)


def load_text(text: str, env: Mapping[str, str] | None = None, source: str = "config",
              registries: Registries | None = None) -> Config:
    return _load.load_text(text, env, source, (registries or default_registries()).check)


def load_file(path: str | os.PathLike[str], env: Mapping[str, str] | None = None,
              registries: Registries | None = None) -> Config:
    return _load.load_file(path, env, (registries or default_registries()).check)
