"""``stellwerk tune-task-router``: examples in, a head out that a config can name; bad examples named by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from stellwerk.cli import main
from stellwerk.routing.task import TaskOptions, TaskRequest, TaskRouter, load_embedder
from stellwerk.routing.task.head import LinearHead
from stellwerk.routing.task.tune import MIN_PER_LABEL, read_examples
from support import config, deployment, model

TEAM = {
    "billing": ["I was charged twice this month", "Please refund my last invoice", "Why is my bill so high?",
                "Update the credit card on my account", "Can I get an invoice for March?", "Cancel my subscription"],
    "bug": ["The app crashes when I open settings", "Login button does nothing", "Error 500 when saving a form",
            "The page is blank after the update", "Export to PDF fails with an exception", "Sync stopped working"],
    "sales": ["Do you offer a discount for 50 seats?", "I'd like a demo for my team", "What does the enterprise plan include?",
              "Can we get a quote for a yearly plan?", "Is there a nonprofit price?", "Talk to sales about volume pricing"],
}


def write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def team_examples(tmp_path: Path) -> Path:
    return write(tmp_path / "team.jsonl", [{"prompt": p, "label": k} for k, ps in TEAM.items() for p in ps])


def test_the_tuned_head_routes_the_teams_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "team.npz"
    assert main(["tune-task-router", "--examples", str(team_examples(tmp_path)), "--out", str(out), "--folds", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 18 and set(report["recall"]) == set(TEAM)
    assert 0 <= report["accuracy"] <= 1 and report["coverage"][0]["routed"] == 1.0
    head = LinearHead.load(out)
    assert head.classes == ("billing", "bug", "sales")
    options = msgspec.convert({"default": "sales", "head": str(out), "abstain_below": 0.0, "routes": [
        {"name": n, "target": f"m-{n}", "examples": []} for n in TEAM]}, TaskOptions)
    router = TaskRouter.from_options(options, load_embedder(head.spec.embedder), head)
    assert router.route(TaskRequest.of("I was charged twice, please refund")).route == "billing"
    assert router.route(TaskRequest.of("The app crashes on start")).route == "bug"


@pytest.mark.parametrize(("lines", "problem"), [
    (['{"prompt": "x"}'], r"team\.jsonl:1: expected"),
    (['{"prompt": "a", "label": "x"}', "not json"], r"team\.jsonl:2: expected"),
    (['{"prompt": " ", "label": "x"}'], r"team\.jsonl:1: blank prompt or label"),
    (['{"prompt": "a", "label": "x"}'] * 6, "at least two different labels"),
    (['{"prompt": "a", "label": "x"}'] * 6 + ['{"prompt": "b", "label": "y"}'],
     f"at least {MIN_PER_LABEL} prompts per label; too few for y"),
])
def test_bad_examples_are_named(tmp_path: Path, lines: list[str], problem: str) -> None:
    path = tmp_path / "team.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        read_examples(path)


def test_the_command_reports_bad_input_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tune-task-router", "--examples", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "h.npz")]
    assert main(args) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "h.npz").exists()
    assert main([*args[:-4], "--examples", str(team_examples(tmp_path)), "--out", str(tmp_path / "h.npz"), "--folds", "1"]) == 2
    assert "--folds must be at least 2" in capsys.readouterr().err


def test_a_gateway_without_task_models_does_not_import_numpy() -> None:
    code = (
        "import sys; from stellwerk import load_dict; import stellwerk.gateway, stellwerk.cli; "
        f"load_dict({config(model('chat', deployment('a', 'http://127.0.0.1:9/v1')))!r}, env={{}}); "
        "print(sorted(m for m in ('numpy', 'tokenizers', 'safetensors') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
