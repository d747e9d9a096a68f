"""Scenario parsing: what a scenario means, and a clear error naming the key for everything it cannot mean."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from simulate_support import FAST, config, dep, run

from stellwerk.simulate import Scenario, ScenarioError
from stellwerk.simulate.distribution import Distribution
from stellwerk.simulate.scenario import DEFAULT_DEPLOYMENT

GOOD: dict[str, Any] = {
    "duration": 600,
    "traffic": {"rps": [{"at": 0, "rps": 20}, {"at": 300, "rps": 80}], "models": {"chat": 0.8, "embed": 0.2},
                "stream_share": 0.5, "prompt_tokens": {"median": 400, "p99": 6000}, "output_tokens": 200},
    "deployments": {"primary": {"ttft": {"median": 0.4, "p99": 2.0}, "tokens_per_second": 80,
                                "errors": {"5xx": 0.01, "429": 0.02, "timeout": 0.0, "cut": 0.005},
                                "retry_after": 2, "outages": [{"start": 120, "end": 300}], "rpm": 600}},
}


def test_the_issue_s_example_parses_to_what_it_says() -> None:
    s = Scenario.from_dict(GOOD)
    assert s.duration == 600
    assert s.traffic.steps == ((0, 20), (300, 80))
    assert [(m.model, m.share, m.operation) for m in s.traffic.models] == [("chat", 0.8, "chat"),
                                                                           ("embed", 0.2, "embeddings")]
    assert s.traffic.prompt_tokens == Distribution(400, 6000)
    assert s.traffic.output_tokens == Distribution.constant(200)
    p = s.behaviour("primary")
    assert (p.errors.server, p.errors.rate_limit, p.errors.timeout, p.errors.cut) == (0.01, 0.02, 0.0, 0.005)
    assert (p.retry_after, p.rpm, p.tokens_per_second) == (2, 600, 80)
    assert [(w.start, w.end) for w in p.outages] == [(120, 300)]
    assert s.behaviour("unlisted") is DEFAULT_DEPLOYMENT


def test_a_distribution_has_the_median_and_p99_it_was_given() -> None:
    import random

    d = Distribution(0.4, 2.0)
    rng = random.Random(3)
    draws = sorted(d.sample(rng) for _ in range(20000))
    assert draws[10000] == pytest.approx(0.4, rel=0.05)
    assert draws[19800] == pytest.approx(2.0, rel=0.1)
    assert Distribution.constant(5).sample(random.Random(1)) == 5


@pytest.mark.parametrize(("change", "message"), [
    ({"speed": 1}, "speed: unknown key"),
    ({"duration": 0}, "duration: expected a number > 0, got 0"),
    ({"duration": "long"}, "duration: expected a number, got 'long'"),
    ({"traffic": {"models": {}}}, "traffic.rps: required"),
    ({"traffic": {"rps": [{"at": 5, "rps": 1}]}}, "traffic.rps[0].at: the first step must be at 0"),
    ({"traffic": {"rps": [{"at": 0, "rps": 1}, {"at": 0, "rps": 2}]}}, "traffic.rps[1].at: steps must be in increasing"),
    ({"traffic": {"rps": 1, "stream_share": 1.5}}, "traffic.stream_share: expected a number >= 0 and <= 1, got 1.5"),
    ({"traffic": {"rps": 1, "prompt_tokens": {"median": 10}}}, "traffic.prompt_tokens.p99: required"),
    ({"traffic": {"rps": 1, "prompt_tokens": {"median": 10, "p99": 5}}},
     "traffic.prompt_tokens.p99: expected at least the median (10), got 5"),
    ({"traffic": {"rps": 1, "models": {"chat": {"share": 1, "operation": "images"}}}},
     "traffic.models.chat.operation: expected 'chat' or 'embeddings', got 'images'"),
    ({"traffic": {"trace": 7}}, "traffic.trace: expected a file name, got 7"),
    ({"deployments": {"a": {"errors": {"503": 0.1}}}}, "deployments.a.errors.503: unknown key"),
    ({"deployments": {"a": {"errors": {"5xx": 0.7, "429": 0.7}}}}, "deployments.a.errors: the rates add up to more than 1"),
    ({"deployments": {"a": {"outages": [{"start": 10, "end": 5}]}}},
     "deployments.a.outages[0].end: expected a time after start (10), got 5"),
    ({"deployments": {"a": {"outages": [{"start": 1, "end": 5, "mode": "explode"}]}}},
     "deployments.a.outages[0].mode: expected 'status', 'refuse' or 'hang'"),
    ({"deployments": {"a": {"rpm": 0}}}, "deployments.a.rpm: expected a whole number >= 1, got 0"),
    ({"deployments": {"a": {"ttft": True}}}, "deployments.a.ttft: expected a number or {median: X, p99: Y}, got True"),
])
def test_an_invalid_scenario_is_refused_naming_the_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match="^scenario: " + re.escape(message)):
        Scenario.from_dict({**GOOD, **change})


def test_a_deployment_or_model_the_config_does_not_have_is_refused() -> None:
    scenario = {"duration": 10, "traffic": {"rps": 1}}
    with pytest.raises(ScenarioError, match=r"deployments\.ghost: no such deployment in the config; expected one of \['a'\]"):
        run(config(dep("a")), scenario | {"deployments": {"ghost": FAST}})
    with pytest.raises(ScenarioError, match=r"traffic\.models\.embed: no such model in the config"):
        run(config(dep("a")), {"duration": 10, "traffic": {"rps": 1, "models": {"embed": 1}}})


def test_a_scenario_file_that_is_not_yaml_or_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.yaml"):
        Scenario.from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("duration: [1,\n")
    with pytest.raises(ScenarioError, match=r"bad\.yaml"):
        Scenario.from_file(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(ScenarioError, match="<root>: expected a mapping"):
        Scenario.from_file(listed)
