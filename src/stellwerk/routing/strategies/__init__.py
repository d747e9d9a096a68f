"""Routing strategies: each orders a model's candidate deployments for one request.

A strategy is built once per model from its validated options, with the RNG
and the clock injected, and ranks immutable snapshots (see ``base``)::

    strategy = build_strategy("latency", {"explore_probability": 0.1}, rng=random.Random(), clock=time.monotonic)
    ranking = strategy.rank(candidates, request)     # ranking.ids, ranking.summary

The registry maps the config's ``strategy`` names to an options struct and a
factory ``(options, *, rng, clock) -> Strategy``; a new strategy (e.g. the
semantic ``task`` router) is one more entry in ``_REGISTRY``. Filters that
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
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol

import msgspec

from stellwerk.errors import ConfigError

from .ab import ABOptions, ABStrategy
from .base import Candidate, Clock, Filter, Ranking, RequestFacts, Scored, Strategy
from .cost import CostOptions, CostStrategy
from .ewma import EWMA, PeakEWMA
from .experiments import ExperimentStats
from .failover import FailoverOptions, FailoverStrategy
from .filters import CapabilityFilter, HealthFilter, HealthFilterOptions, LimitsFilter, TagFilter, TagFilterOptions
from .latency import LatencyOptions, LatencyStrategy
from .least_busy import LeastBusyOptions, LeastBusyStrategy
from .throughput import ThroughputOptions, ThroughputStrategy
from .usage_aware import UsageAwareOptions, UsageAwareStrategy
from .weighted import WeightedOptions, WeightedStrategy
from .weighted_random import WeightedRandomOptions, WeightedRandomStrategy

__all__ = [
    "EWMA",
    "ABStrategy",
    "Candidate",
    "CapabilityFilter",
    "ExperimentStats",
    "Filter",
    "HealthFilter",
    "HealthFilterOptions",
    "LimitsFilter",
    "PeakEWMA",
    "Ranking",
    "RequestFacts",
    "Scored",
    "Strategy",
    "StrategyFactory",
    "TagFilter",
    "TagFilterOptions",
    "build_strategy",
    "options_type",
    "parse_options",
    "strategy_names",
]

class StrategyFactory(Protocol):
    def __call__(self, options: Any, /, *, rng: random.Random, clock: Clock) -> Strategy: ...


_REGISTRY: Mapping[str, tuple[type[msgspec.Struct], StrategyFactory]] = MappingProxyType({
    "failover": (FailoverOptions, FailoverStrategy),
    "weighted": (WeightedOptions, WeightedStrategy),
    "weighted-random": (WeightedRandomOptions, WeightedRandomStrategy),
    "least-busy": (LeastBusyOptions, LeastBusyStrategy),
    "latency": (LatencyOptions, LatencyStrategy),
    "throughput": (ThroughputOptions, ThroughputStrategy),
    "cost": (CostOptions, CostStrategy),
    "usage-aware": (UsageAwareOptions, UsageAwareStrategy),
    "ab": (ABOptions, ABStrategy),
})


def strategy_names() -> list[str]:
    return sorted(_REGISTRY)


def _spec(name: str, where: str) -> tuple[type[msgspec.Struct], StrategyFactory]:
    spec = _REGISTRY.get(name)
    if spec is None:
        where = where.rpartition(".")[0] + "." if "." in where else ""
        raise ConfigError([f"{where}strategy: expected one of {', '.join(strategy_names())}, got '{name}'"])
    return spec


def options_type(name: str) -> type[msgspec.Struct]:
    """The options struct of strategy ``name``."""
    return _spec(name, "strategy_options")[0]


def parse_options(name: str, options: Mapping[str, Any] | None, where: str = "strategy_options") -> msgspec.Struct:
    """Validate ``options`` (from YAML/JSON) for strategy ``name``.

    Raises :class:`~stellwerk.errors.ConfigError` naming the key and what was
    expected, e.g. ``strategy_options.tau: unknown key (expected one of: …)``.
    ``where`` is the options' path in the config (``models[0].strategy_options``).
    """
    kind = _spec(name, where)[0]
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
) -> Strategy:
    """The strategy ``name`` built from ``options`` (a mapping to validate, or its options struct)."""
    kind, factory = _spec(name, where)
    if not isinstance(options, kind):
        if isinstance(options, msgspec.Struct):
            raise ConfigError([f"{where}: expected {kind.__name__} for strategy '{name}', got {type(options).__name__}"])
        options = parse_options(name, options, where)
    return factory(options, rng=rng, clock=clock)
