"""The CLI on a PostgreSQL store: keys set up before any gateway runs; a store that does not answer at start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from keys_support import MASTER
from pg_support import free_port

from stellwerk.cli import main


def test_keys_on_the_store(fresh_pg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "--name", "ci", "--rpm", "5", "--store", fresh_pg]) == 0
    created = json.loads(capsys.readouterr().out)
    assert main(["keys", "list", "--store", fresh_pg]) == 0
    assert created["id"] in capsys.readouterr().out
    assert main(["spend", "--group-by", "key", "--store", fresh_pg]) == 0


def test_serve_says_when_the_store_does_not_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "stellwerk.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "m",
                                                      "api_base": "http://127.0.0.1:9/v1"}]}],
        "server": {"master_key": MASTER, "store": f"postgresql://stw:hunter2@127.0.0.1:{free_port()}/stw",
                   "spend_journal": str(tmp_path / "spend.journal")}}))
    assert main(["serve", "--config", str(config), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "server.store" in err and "unreachable" in err and "store_unavailable" in err
    assert "hunter2" not in err
