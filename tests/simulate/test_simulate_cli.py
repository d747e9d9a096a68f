"""``stellwerk simulate``: the JSON report's shape, ``--compare``, the text report, exit codes; determinism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from simulate_support import FAST, config, dep, run

from stellwerk.cli import main

SCENARIO = {
    "duration": 60,
    "traffic": {"rps": 10, "stream_share": 0.5, "prompt_tokens": {"median": 200, "p99": 2000}, "output_tokens": 64},
    "deployments": {"primary": {"ttft": {"median": 0.3, "p99": 1.5}, "tokens_per_second": 200,
                                "errors": {"5xx": 0.02, "429": 0.02, "cut": 0.01}, "outages": [{"start": 20, "end": 30}],
                                "rpm": 240},
                    "backup": FAST},
}
FAILOVER = config(dep("primary", price={"input_per_mtok": 0.15, "output_per_mtok": 0.6}),
                  dep("backup", provider="anthropic", price={"input_per_mtok": 0.8, "output_per_mtok": 4}),
                  strategy="failover")
WEIGHTED = config(*FAILOVER["models"][0]["deployments"], strategy="weighted")


def files(tmp_path: Path) -> tuple[str, str, str]:
    paths = [tmp_path / "failover.yaml", tmp_path / "weighted.yaml", tmp_path / "scenario.yaml"]
    for path, data in zip(paths, (FAILOVER, WEIGHTED, SCENARIO), strict=True):
        path.write_text(yaml.safe_dump(data))
    return str(paths[0]), str(paths[1]), str(paths[2])


def check_report(report: dict[str, Any], name: str) -> None:
    assert report["config"] == name
    assert 0 < report["requests"] < 1000
    assert 0 <= report["availability"] <= 1
    assert isinstance(report["errors"], dict)
    assert report["attempts_per_request"] >= 1
    for field in ("latency", "ttft"):
        assert set(report[field]) == {"p50", "p90", "p99"}
        assert 0 < report[field]["p50"] <= report[field]["p90"] <= report[field]["p99"]
    assert set(report["cost"]) == {"total", "per_1k"}
    assert report["cost"]["per_1k"] == pytest.approx(report["cost"]["total"] / report["requests"] * 1000, rel=1e-3)
    assert set(report["deployments"]) == {"primary", "backup"}
    for d in report["deployments"].values():
        assert {"requests", "share", "over_time"} <= set(d)
    assert sum(d["share"] for d in report["deployments"].values()) == pytest.approx(1.0)
    assert sum(d["requests"] for d in report["deployments"].values()) == round(report["availability"] * report["requests"])
    assert report["limit_violations"] == {"primary": report["limit_violations"]["primary"]}
    [outage] = report["outages"]
    assert (outage["deployment"], outage["start"], outage["end"]) == ("primary", 20, 30)


def test_json_report_has_the_contract_s_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failover, _, scenario = files(tmp_path)
    assert main(["simulate", "--config", failover, "--scenario", scenario, "--seed", "3", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    check_report(report, failover)
    assert report["seed"] == 3
    assert report["upstream_errors"]  # 5xx, 429s and cuts were injected, and failed over


def test_compare_gives_both_reports_in_command_line_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failover, weighted, scenario = files(tmp_path)
    assert main(["simulate", "-c", failover, "-s", scenario, "--compare", weighted, "--json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert list(doc) == ["configs"]
    first, second = doc["configs"]
    check_report(first, failover)
    check_report(second, weighted)
    assert first["requests"] == second["requests"]  # the same traffic
    assert first["deployments"]["primary"]["share"] > second["deployments"]["primary"]["share"]


def test_the_text_report_puts_configs_side_by_side_with_differences(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    failover, weighted, scenario = files(tmp_path)
    assert main(["simulate", "-c", failover, "-s", scenario, "--compare", weighted]) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if "difference" in line)
    assert header.index("failover.yaml") < header.index("weighted.yaml") < header.index("difference")
    availability = next(line for line in text.splitlines() if line.startswith("availability"))
    assert availability.endswith(" pp")
    assert "primary down 20-30 s: detected after" in text
    assert "share of answers, and over time (3 s per bar)" in text


def test_bad_scenario_or_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failover, _, scenario = files(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SCENARIO, "duration": -1}))
    assert main(["simulate", "-c", failover, "-s", str(bad)]) == 2
    assert "duration: expected a number > 0, got -1" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: []\n")
    assert main(["simulate", "-c", str(broken), "-s", scenario]) == 2
    assert "models" in capsys.readouterr().err


def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    one = run(FAILOVER, SCENARIO, seed=5)
    assert run(FAILOVER, SCENARIO, seed=5) == one
    other = run(FAILOVER, SCENARIO, seed=6)
    assert other["requests"] != one["requests"] or other["latency"] != one["latency"]


def test_simulated_ttft_has_the_scenario_s_median_and_p99() -> None:
    scenario = {"duration": 300, "traffic": {"rps": 20, "stream_share": 1.0, "output_tokens": 10},
                "deployments": {"a": {"ttft": {"median": 0.4, "p99": 2.0}, "tokens_per_second": 1000}}}
    report = run(config(dep("a")), scenario)
    assert report["ttft"]["p50"] == pytest.approx(0.4, rel=0.05)
    assert report["ttft"]["p99"] == pytest.approx(2.0, rel=0.15)


def test_a_stream_in_chunks_ends_when_its_last_token_is_due() -> None:
    """Chunks of many tokens, yet the answer takes ttft + (tokens - 1) / tokens_per_second, as token by token."""
    scenario = {"duration": 60, "traffic": {"rps": 2, "stream_share": 1.0, "output_tokens": 150},
                "deployments": {"a": {"ttft": 0.5, "tokens_per_second": 100}}}
    report = run(config(dep("a")), scenario)
    assert report["ttft"]["p50"] == pytest.approx(0.5, abs=0.01)
    assert report["latency"]["p50"] == pytest.approx(0.5 + 149 / 100, abs=0.02)
    assert report["latency"]["p99"] == pytest.approx(0.5 + 149 / 100, abs=0.02)


def test_a_provider_rpm_is_a_limit_that_is_reported_when_traffic_exceeds_it() -> None:
    scenario = {"duration": 120, "traffic": {"rps": 5, "output_tokens": 10},
                "deployments": {"a": {**FAST, "rpm": 120}, "b": FAST}}
    report = run(config(dep("a"), dep("b"), strategy="failover"), scenario)
    assert report["limit_violations"]["a"] > 0
    assert report["availability"] == 1.0  # b took what a refused
    assert 0.3 < report["deployments"]["a"]["share"] < 0.5  # a answered about its 2 per second of 5
