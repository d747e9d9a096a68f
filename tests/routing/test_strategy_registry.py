"""The registry: names, building from config options, precise errors."""

from __future__ import annotations

import random

import msgspec
import pytest

from stellwerk.errors import ConfigError
from stellwerk.routing.strategies import build_strategy, options_type, parse_options, strategy_names
from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.latency import LatencyOptions, LatencyStrategy

AB: dict[str, object] = {"variants": [{"name": "control", "deployments": ["a"], "percent": 100}]}


def build(name: str, options: dict[str, object] | None = None, where: str = "strategy_options") -> object:
    return build_strategy(name, options, rng=random.Random(1), clock=lambda: 0.0, where=where)


def test_names() -> None:
    assert strategy_names() == ["ab", "cost", "failover", "latency", "least-busy", "throughput", "usage-aware",
                                "weighted", "weighted-random"]


@pytest.mark.parametrize("name", strategy_names())
def test_every_strategy_builds_from_defaults_and_ranks(name: str) -> None:
    strategy = build(name, AB if name == "ab" else None)
    assert strategy.name == name  # type: ignore[attr-defined]
    cands = [Candidate(id="a"), Candidate(id="b", weight=2)]
    ranking = strategy.rank(cands, RequestFacts(model="m"))  # type: ignore[attr-defined]
    assert sorted(ranking.ids) == ["a", "b"]
    assert ranking.summary.startswith(f"{name}: ")
    assert strategy.rank([], RequestFacts(model="m")).ids == []  # type: ignore[attr-defined]


def test_options_are_converted_and_structs_accepted() -> None:
    strategy = build("latency", {"explore_probability": 0, "min_observations": 10})
    assert isinstance(strategy, LatencyStrategy)
    assert strategy.options == LatencyOptions(explore_probability=0.0, min_observations=10)
    same = build_strategy("latency", LatencyOptions(min_observations=10), rng=random.Random(), clock=lambda: 0.0)
    assert same.options.min_observations == 10  # type: ignore[attr-defined]
    assert options_type("cost").__name__ == "CostOptions"
    assert msgspec.structs.asdict(parse_options("least-busy", {"ties": "random"})) == {"ties": "random"}


@pytest.mark.parametrize(("name", "options", "problem"), [
    ("latency", {"tau": 5}, "models[2].strategy_options.tau: unknown key (expected one of: min_observations, assume_new, "
                            "explore_probability, long_answer_tokens)"),
    ("latency", {"explore_probability": 1.5}, "models[2].strategy_options.explore_probability: expected `float` <= 1.0"),
    ("latency", {"assume_new": "mean"}, "models[2].strategy_options.assume_new: invalid enum value 'mean'"),
    ("ab", None, "models[2].strategy_options.variants: required key is missing"),
    ("ab", {"variants": [{"name": "a", "deployments": ["a"], "percent": 100, "pct": 1}]},
     "models[2].strategy_options.variants[0].pct: unknown key"),
    ("ab", {"variants": [{"name": "a", "deployments": ["a"], "percent": 90}]},
     "models[2].strategy_options: the variants' percentages add up to 90, expected 100"),
    ("weighted", {"x": 1}, "models[2].strategy_options.x: unknown key"),
    ("cost", [1], "models[2].strategy_options: expected a mapping, got list"),
    ("fastest", {}, "models[2].strategy: expected one of ab, cost, failover, latency, least-busy, throughput, "
                    "usage-aware, weighted, weighted-random, got 'fastest'"),
])
def test_errors_name_the_key(name: str, options: object, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(name, options, where="models[2].strategy_options")  # type: ignore[arg-type]
    assert info.value.problems == [problem]


def test_a_struct_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ConfigError, match="expected CostOptions"):
        build_strategy("cost", LatencyOptions(), rng=random.Random(), clock=lambda: 0.0)
