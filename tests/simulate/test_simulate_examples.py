"""The example scenarios in examples/simulate/ parse, and name only deployments of the configs they are run with."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stellwerk.simulate import Scenario
from stellwerk.simulate.runner import check_deployments, load_config

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "simulate"
SCENARIOS = sorted(p for p in EXAMPLES.glob("*.yaml") if "duration:" in p.read_text())


def test_there_are_the_three_example_scenarios() -> None:
    assert {p.name for p in SCENARIOS} == {"outage.yaml", "rate-limit-storm.yaml", "price-change.yaml"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_an_example_scenario_is_valid_with_the_configs_its_comment_names(path: Path) -> None:
    scenario = Scenario.from_file(path)
    command = re.search(r"stellwerk simulate -c (\S+) -s (\S+) --compare (\S+)", path.read_text())
    assert command, "each example says how to run it"
    root = EXAMPLES.parent.parent
    assert root / command.group(2) == path
    configs = [load_config(root / command.group(1)), load_config(root / command.group(3))]
    check_deployments(scenario, configs)
