"""Strategy options are checked when the config is loaded: each mistake gives one problem naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellwerk import load_dict
from stellwerk.errors import ConfigError
from support import config, deployment, model

URL = "http://127.0.0.1:9/v1"


def problems(strategy: str, options: dict[str, Any]) -> list[str]:
    data = config(model("chat", deployment("a", URL), deployment("b", URL), strategy=strategy, strategy_options=options),
                  model("other", deployment("c", URL)))
    with pytest.raises(ConfigError) as caught:
        load_dict(data, env={})
    return caught.value.problems


WHERE = "models[0].strategy_options"
ONE_VARIANT = [{"name": "all", "deployments": ["a"], "percent": 100}]
ONE_ROUTE = [{"name": "code", "target": "other"}]


@pytest.mark.parametrize(("strategy", "options", "problem"), [
    ("failover", {"by_prio": True}, f"{WHERE}.by_prio: unknown key (expected one of: by_priority)"),
    ("failover", {"by_priority": "yes"}, f"{WHERE}.by_priority: expected `bool`, got `str`"),
    ("weighted", {"smooth": True}, f"{WHERE}.smooth: unknown key"),
    ("weighted-random", {"seed": 1}, f"{WHERE}.seed: unknown key"),
    ("least-busy", {"tie": "random"}, f"{WHERE}.tie: unknown key (expected one of: ties)"),
    ("least-busy", {"ties": "first"}, f"{WHERE}.ties: invalid enum value 'first'"),
    ("latency", {"explore": 0.1}, f"{WHERE}.explore: unknown key (expected one of: min_observations, assume_new, "
                                  "explore_probability, long_answer_tokens)"),
    ("latency", {"explore_probability": 2}, f"{WHERE}.explore_probability: expected `float` <= 1.0"),
    ("latency", {"assume_new": "worst"}, f"{WHERE}.assume_new: invalid enum value 'worst'"),
    ("throughput", {"min_obs": 3}, f"{WHERE}.min_obs: unknown key (expected one of: min_observations, assume_new, "
                                   "explore_probability)"),
    ("cost", {"max_tier": 2}, f"{WHERE}.max_tier: unknown key (expected one of: min_tier, tie_tolerance)"),
    ("cost", {"min_tier": "high"}, f"{WHERE}.min_tier: expected `int | null`, got `str`"),
    ("cost", {"tie_tolerance": -0.1}, f"{WHERE}.tie_tolerance: expected `float` >= 0.0"),
    ("usage-aware", {"headroom": 0.1}, f"{WHERE}.headroom: unknown key (expected one of: reserve)"),
    ("usage-aware", {"reserve": 1.0}, f"{WHERE}.reserve: expected `float` < 1.0"),
    ("ab", {"variants": ONE_VARIANT, "sticky": "user"},
     f"{WHERE}.sticky: unknown key (expected one of: variants, sticky_on, salt)"),
    ("ab", {"variants": [{**ONE_VARIANT[0], "weight": 1}]}, f"{WHERE}.variants[0].weight: unknown key"),
    ("ab", {}, f"{WHERE}.variants: required key is missing"),
    ("ab", {"variants": [{"name": "x", "deployments": ["a"], "percent": 60}]},
     f"{WHERE}: the variants' percentages add up to 60, expected 100"),
    ("ab", {"variants": [{"name": "x", "deployments": ["zz"], "percent": 100}]},
     f"{WHERE}.variants: variant 'x' names unknown deployment 'zz'"),
    ("ab", {"variants": ONE_VARIANT, "sticky_on": "cookie:id"}, f"{WHERE}.sticky_on: expected `str` matching regex "
                                                               "'^(user|header:[A-Za-z0-9-]+|metadata:[A-Za-z0-9._-]+)$'"),
    ("task", {"routes": ONE_ROUTE, "default": "code", "threshhold": 0.2},
         f"{WHERE}.threshhold: unknown key (expected one of: routes, default, rules, threshold, hint_header, "
         "hint_metadata, embedder, scoring, top_k, focus_words, max_chars, include_system, head, abstain_below, "
         "min_margin, translation_needs_ask)"),
    ("task", {"routes": ONE_ROUTE, "default": "code", "head": "mine.pkl"},
     f"{WHERE}.head: expected auto, builtin, none or a .npz file written by 'stellwerk tune-task-router', got 'mine.pkl'"),
    ("task", {"routes": ONE_ROUTE, "default": "code", "head": "/nonexistent/team.npz"},
     f"{WHERE}.head: no such file '/nonexistent/team.npz' (write one with 'stellwerk tune-task-router')"),
    ("task", {"routes": ONE_ROUTE, "default": "code", "abstain_below": 1.5}, f"{WHERE}.abstain_below: expected `float` <= 1.0"),
    ("task", {"routes": ONE_ROUTE, "default": "code", "min_margin": -0.1}, f"{WHERE}.min_margin: expected `float` >= 0.0"),
    ("task", {"routes": [{"name": "code", "tagret": "other"}], "default": "code"}, f"{WHERE}.routes[0].tagret: unknown key"),
    ("task", {"routes": [{"name": "code", "target": "nope"}], "default": "code"},
     f"{WHERE}.routes: route 'code' targets unknown model 'nope'"),
    ("task", {"routes": [{"name": "code", "deployments": ["zz"]}], "default": "code"},
     f"{WHERE}.routes: route 'code' names unknown deployment 'zz'"),
])
def test_bad_strategy_options_name_the_key(strategy: str, options: dict[str, Any], problem: str) -> None:
    assert problems(strategy, options) == [problem]


def test_a_head_file_that_is_not_a_head_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "team.npz").write_bytes(b"not a head")
    found = problems("task", {"routes": ONE_ROUTE, "default": "code", "head": str(tmp_path / "team.npz")})
    assert len(found) == 1 and found[0].startswith(f"{WHERE}.head: {tmp_path / 'team.npz'}: not a task-router head")


@pytest.mark.parametrize(("options", "key"), [
    ({"routes": ONE_ROUTE, "default": "cod"}, f"{WHERE}.default: 'cod' is not a route name"),
    ({"routes": [{"name": "support", "target": "other"}], "default": "support"}, f"{WHERE}.routes[0].examples: required"),
    ({"routes": ONE_ROUTE, "default": "code", "rules": [{"route": "math", "regex": "x"}]},
     f"{WHERE}.rules[0].route: 'math' is not a route name"),
    ({"routes": ONE_ROUTE, "default": "code", "rules": [{"route": "code", "regex": "("}]},
     f"{WHERE}.rules[0].regex: not a valid regular expression"),
])
def test_task_options_are_checked_at_load_not_at_start(options: dict[str, Any], key: str) -> None:
    # Otherwise `stellwerk check` passes a config the gateway then fails to start with (a ValueError).
    found = problems("task", options)
    assert any(p.startswith(key) for p in found), found


def test_unknown_strategy_lists_the_known_ones() -> None:
    assert problems("fastest", {}) == ["models[0].strategy: expected one of ab, cost, failover, latency, least-busy, "
                                       "task, throughput, usage-aware, weighted, weighted-random, got 'fastest'"]
