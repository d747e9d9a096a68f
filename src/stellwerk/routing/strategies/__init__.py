"""Routing strategies: each orders a model's candidate deployments for one request.

A strategy is built once per model from its validated options, with the RNG
and the clock injected, and ranks immutable snapshots (see ``base``)::

    strategy = build_strategy("latency", {"explore_probability": 0.1}, rng=random.Random(), clock=time.monotonic)
    ranking = strategy.rank(candidates, request)     # ranking.ids, ranking.summary

A :class:`StrategySpec` gives a strategy's options struct, its factory
``(options, *, rng, clock) -> Strategy``, whether its options may change at
run time, and its cross-checks against the model. ``BUILTIN`` holds the specs
of this package; the composition root (:mod:`stellwerk.compose`) adds
``task`` and whatever a user registers, and no code outside the registry
compares strategy names. Filters that
any strategy can be combined with are in ``filters``; the moving averages
behind the latency figures in ``ewma``.

    name             module               orders by
    failover         failover.py          priority, then listed order
    weighted         weighted.py          smooth weighted round robin (nginx)
    weighted-random  weighted_random.py   weighted sampling without replacement
    least-busy       least_busy.py        fewest requests in flight
    latency          latency.py           power of two choices over peak-EWMA cost
    throughput       throughput.py        highest output tokens per second
    cost             cost.py              cheapest estimated cost, ties by latency
    usage-aware      usage_aware.py       most rate-limit headroom; never over a limit
    ab               ab.py                sticky A/B variants and canaries
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import msgspec

from stellwerk.errors import ConfigError

from .ab import ABOptions, ABStrategy
from .base import Candidate, Clock, Filter, Ranking, RequestFacts, Scored, Strategy, StrategyBase, TaskChoice
from .cost import CostOptions, CostStrategy
from .ewma import EWMA, PeakEWMA
from .experiments import ExperimentStats
from .failover import FailoverOptions, FailoverStrategy
from .filters import CapabilityFilter, LimitsFilter, TagFilter, TagFilterOptions
from .latency import LatencyOptions, LatencyStrategy
from .least_busy import LeastBusyOptions, LeastBusyStrategy
from .throughput import ThroughputOptions, ThroughputStrategy
from .usage_aware import UsageAwareOptions, UsageAwareStrategy
from .weighted import WeightedOptions, WeightedStrategy
from .weighted_random import WeightedRandomOptions, WeightedRandomStrategy

__all__ = [
    "BUILTIN",
    "EWMA",
    "ABStrategy",
    "Candidate",
    "CapabilityFilter",
    "ExperimentStats",
    "Filter",
    "LimitsFilter",
    "PeakEWMA",
    "Ranking",
    "RequestFacts",
    "Scored",
    "Strategy",
    "StrategyBase",
    "StrategyFactory",
    "StrategySpec",
    "TagFilter",
    "TagFilterOptions",
    "TaskChoice",
    "build_strategy",
    "options_type",
    "parse_options",
    "strategy_names",
]

class StrategyFactory(Protocol):
    def __call__(self, options: Any, /, *, rng: random.Random, clock: Clock) -> Strategy: ...


ModelCheck = Callable[[Any, Any, frozenset[str], str], list[str]]
"""``check(options, model_config, model_names, where) -> problems``: rules that need the model (e.g. A/B
variants must name its deployments). Problems are ``key: what was expected``, keys under ``where``."""


@dataclass(frozen=True, slots=True)
class StrategySpec:
    options: type[msgspec.Struct]
    factory: StrategyFactory
    changeable: bool = False
    """Its options may change at run time (``PUT /admin/models/M/strategy``)."""
    check: ModelCheck | None = None


def _check_variants(options: Any, model: Any, names: frozenset[str], where: str) -> list[str]:
    ids = {d.id for d in model.deployments}
    return [f"{where}.variants: variant '{variant.name}' names unknown deployment '{dep}'"
            for variant in options.variants for dep in variant.deployments if dep not in ids]


BUILTIN: Mapping[str, StrategySpec] = MappingProxyType({
    "failover": StrategySpec(FailoverOptions, FailoverStrategy),
    "weighted": StrategySpec(WeightedOptions, WeightedStrategy),
    "weighted-random": StrategySpec(WeightedRandomOptions, WeightedRandomStrategy),
    "least-busy": StrategySpec(LeastBusyOptions, LeastBusyStrategy),
    "latency": StrategySpec(LatencyOptions, LatencyStrategy),
    "throughput": StrategySpec(ThroughputOptions, ThroughputStrategy),
    "cost": StrategySpec(CostOptions, CostStrategy),
    "usage-aware": StrategySpec(UsageAwareOptions, UsageAwareStrategy),
    "ab": StrategySpec(ABOptions, ABStrategy, changeable=True, check=_check_variants),
})
"""The strategies of this package (``task`` is added by the composition root: it loads an embedder)."""


def strategy_names(specs: Mapping[str, StrategySpec] = BUILTIN) -> list[str]:
    return sorted(specs)


def _spec(name: str, where: str, specs: Mapping[str, StrategySpec]) -> StrategySpec:
    spec = specs.get(name)
    if spec is None:
        where = where.rpartition(".")[0] + "." if "." in where else ""
        raise ConfigError([f"{where}strategy: expected one of {', '.join(strategy_names(specs))}, got '{name}'"])
    return spec


def options_type(name: str, specs: Mapping[str, StrategySpec] = BUILTIN) -> type[msgspec.Struct]:
    """The options struct of strategy ``name``."""
    return _spec(name, "strategy_options", specs).options


def parse_options(name: str, options: Mapping[str, Any] | None, where: str = "strategy_options",
                  specs: Mapping[str, StrategySpec] = BUILTIN) -> msgspec.Struct:
    """Validate ``options`` (from YAML/JSON) for strategy ``name``.

    Raises :class:`~stellwerk.errors.ConfigError` naming the key and what was
    expected, e.g. ``strategy_options.tau: unknown key (expected one of: …)``.
    ``where`` is the options' path in the config (``models[0].strategy_options``).
    """
    kind = _spec(name, where, specs).options
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError([f"{where}: expected a mapping, got {type(options).__name__}"])
    try:
        return msgspec.convert(dict(options or {}), kind)
    except msgspec.ValidationError as err:
        raise ConfigError([_problem(str(err), where, kind)]) from None


def _problem(message: str, where: str, kind: type[msgspec.Struct]) -> str:
    # msgspec: "Expected `float`, got `str` - at `$.explore_probability`"
    text, _, at = message.partition(" - at `$")
    path = where + at.rstrip("`")
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        known = ", ".join(kind.__struct_fields__) if not at else ""
        return f"{path}.{unknown.group(1)}: unknown key" + (f" (expected one of: {known})" if known else "")
    missing = re.match(r"Object missing required field `(.+)`", text)
    if missing:
        return f"{path}.{missing.group(1)}: required key is missing"
    return f"{path}: {text[0].lower()}{text[1:]}"


def build_strategy(
    name: str,
    options: Mapping[str, Any] | msgspec.Struct | None = None,
    *,
    rng: random.Random,
    clock: Clock,
    where: str = "strategy_options",
    specs: Mapping[str, StrategySpec] = BUILTIN,
) -> Strategy:
    """The strategy ``name`` built from ``options`` (a mapping to validate, or its options struct)."""
    spec = _spec(name, where, specs)
    if not isinstance(options, spec.options):
        if isinstance(options, msgspec.Struct):
            raise ConfigError([f"{where}: expected {spec.options.__name__} for strategy '{name}', "
                               f"got {type(options).__name__}"])
        options = parse_options(name, options, where, specs)
    return spec.factory(options, rng=rng, clock=clock)
