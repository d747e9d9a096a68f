"""The routing table: every model of one configuration version, immutable, swapped atomically.

    Config ──build_table──► RoutingTable(version) ─► Model (group + planner) per name
                 │
                 └── LiveState: breakers, budgets, health, counters, strategies, experiments,
                     kept across tables for everything whose identity is unchanged

A call keeps the table it started on for all its hops (fallbacks, resumes).
A runtime change (a weight, strategy options) builds a new table with the
next version number instead of mutating the old one; the router swaps its
reference to it in one assignment.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import msgspec

from stellwerk.config import Config, DeploymentConfig, ModelConfig
from stellwerk.errors import ModelNotFoundError
from stellwerk.resilience.budget import RetryBudget
from stellwerk.state import StateStore
from stellwerk.telemetry import Events

from .deployment import Deployment, DeploymentState, ModelGroup
from .planner import Planner
from .strategies import ExperimentStats, Strategy

if TYPE_CHECKING:
    from stellwerk.cluster.limits import SharedLimits
    from stellwerk.compose import Registries

__all__ = ["LiveState", "Model", "RoutingTable", "build_table"]

Clock = Callable[[], float]


def identity(dep: DeploymentConfig) -> tuple[str, str, str, str | None]:
    """What makes a deployment the same one across configs: its state carries over while this is unchanged."""
    return dep.id, dep.provider, dep.model, dep.api_base


class LiveState:
    """Everything that outlives a routing table, keyed by identity."""

    def __init__(self, *, clock: Clock, rng: random.Random, store: StateStore, events: Events,
                 shared: SharedLimits | None = None) -> None:
        self.clock = clock
        self.shared = shared
        """Global deployment rpm/tpm across replicas (``server.redis``), or None: this process alone."""
        self.rng = rng
        self.store = store
        self.events = events
        self._deployments: dict[tuple[str, str, str, str | None], DeploymentState] = {}
        self._budgets: dict[str, RetryBudget] = {}
        self._strategies: dict[tuple[str, str, bytes], Strategy] = {}
        self.experiments: dict[str, ExperimentStats] = {}
        """Per-variant figures of each A/B model, by model name."""

    def deployment(self, dep: DeploymentConfig, model: ModelConfig, count_usage: bool) -> DeploymentState:
        key = identity(dep)
        state = self._deployments.get(key)
        if state is None:
            state = self._deployments[key] = DeploymentState(
                dep.id, model, count_usage, clock=self.clock, rng=self.rng, store=self.store, events=self.events)
            state.shared = self.shared
        state.routing.count_usage = count_usage
        return state

    def budget(self, model: ModelConfig) -> RetryBudget:
        budget = self._budgets.get(model.name)
        if budget is None:
            budget = self._budgets[model.name] = RetryBudget(model.retry_budget, self.clock)
        return budget

    def strategy(self, model: ModelConfig, registries: Registries) -> Strategy:
        """The model's strategy; the same object while its name and options are unchanged (it may hold state,
        such as smooth weighted round robin's current weights)."""
        key = (model.name, model.strategy, msgspec.json.encode(model.strategy_options))
        strategy = self._strategies.get(key)
        if strategy is None:
            strategy = self._strategies[key] = registries.strategy(
                model.strategy, model.strategy_options, rng=self.rng, clock=self.clock)
        return strategy

    def keep_strategies(self, config: Config) -> None:
        """Forget the strategies ``config`` does not use (tables still in use keep their own references)."""
        used = {(m.name, m.strategy, msgspec.json.encode(m.strategy_options)) for m in config.models}
        for key in [k for k in self._strategies if k not in used]:
            del self._strategies[key]


class Model:
    """One model of a routing table: its deployments, its planner and what its requests need counted."""

    __slots__ = ("config", "counts_usage", "group", "name", "needs_tokens", "planner")

    def __init__(self, group: ModelGroup, planner: Planner) -> None:
        self.group = group
        self.planner = planner
        self.config = group.config
        self.name = group.name
        self.needs_tokens = any(d.config.context_window is not None for d in group.deployments)
        """Prompt tokens are counted exactly (a deployment declares a context window)."""
        self.counts_usage = any(d.routing.count_usage for d in group.deployments)
        """Some deployment counts requests and tokens per minute (so attempts reserve tokens)."""

    def fallbacks(self, kind: str) -> tuple[str, ...]:
        """The models to try next after this one failed with ``kind`` (``context``, ``content`` or other)."""
        cfg = self.config
        if kind == "context":
            return tuple(cfg.context_window_fallbacks)
        if kind == "content":
            return tuple(cfg.content_policy_fallbacks)
        return tuple(cfg.fallbacks)


class RoutingTable:
    """Models by name, deployments by id, of one configuration version. Never changed once built."""

    __slots__ = ("config", "config_deployments", "deployments", "experiments", "models", "version")

    def __init__(self, version: int, config: Config, models: Mapping[str, Model]) -> None:
        self.version = version
        self.config = config
        self.models: Mapping[str, Model] = MappingProxyType(dict(models))
        self.deployments: Mapping[str, Deployment] = MappingProxyType(
            {d.id: d for m in models.values() for d in m.group.deployments})
        self.experiments = any(m.planner.experiments is not None for m in models.values())
        self.config_deployments = frozenset(d.id for m in config.models for d in m.deployments)
        """Every deployment the config names, drained ones (``enabled: false``) included."""
        """Some model runs an experiment (A/B accounting is needed)."""

    def model(self, name: str) -> Model:
        model = self.models.get(name)
        if model is None:
            raise ModelNotFoundError(name, list(self.models))
        return model


def build_table(config: Config, version: int, live: LiveState, registries: Registries) -> RoutingTable:
    """A routing table for ``config`` on the live state (which gains entries for what is new)."""
    models: dict[str, Model] = {}
    for cfg in config.models:
        strategy = live.strategy(cfg, registries)
        count_usage = strategy.counts_usage
        deployments = tuple(
            Deployment(d, cfg.name, i, registries.adapter(d.provider),
                       live.deployment(d, cfg, bool(d.rpm or d.tpm or count_usage)), live.clock)
            for i, d in enumerate(cfg.deployments) if d.enabled)  # drained ones take no new requests
        group = ModelGroup(cfg, deployments, live.budget(cfg), live.rng)
        experiments = None
        if strategy.runs_experiments:
            experiments = live.experiments.setdefault(cfg.name, ExperimentStats())
        models[cfg.name] = Model(group, Planner(group, strategy, experiments))
    live.keep_strategies(config)
    return RoutingTable(version, config, models)
