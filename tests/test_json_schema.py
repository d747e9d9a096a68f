"""``stellwerk schema``: the configuration's JSON Schema accepts every example config and refuses mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from stellwerk.cli import main
from stellwerk.config.jsonschema import json_schema

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


def test_the_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["title"] == "Stellwerk configuration" and "ModelConfig" in printed["$defs"]
    models = printed["$defs"]["ModelConfig"]["properties"]
    assert "deadline" in models and models["retries"]["description"]  # field docs reach the editor


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_validates(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text()), json_schema())


@pytest.mark.parametrize("mistake", [
    {"models": []},
    {"models": [{"name": "m", "deployments": [{"id": "a", "provider": "openai"}]}]},  # no model
    {"models": [{"name": "m", "retries": "two", "deployments": [{"id": "a", "provider": "openai", "model": "x"}]}]},
])
def test_mistakes_are_refused(mistake: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(mistake, json_schema())
