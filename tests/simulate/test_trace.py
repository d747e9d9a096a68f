"""Traces: replaying one in a simulation, and ``stellwerk export-trace`` from the access log and the spend ledger."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

import orjson
import pytest
import yaml
from simulate_support import FAST, config, dep

from stellwerk.cli import main
from stellwerk.compose import load_dict
from stellwerk.simulate import Scenario, ScenarioError, simulate
from stellwerk.state.records import SpendRecord
from stellwerk.state.sqlite import SQLiteStore
from stellwerk.telemetry import RequestFinished
from stellwerk.telemetry.access_log import AccessLog
from stellwerk.usage import Usage

LINES = [{"time": i * 0.5, "model": "chat", "prompt_tokens": 100 + i, "output_tokens": 20, "stream": i % 4 == 0}
         for i in range(40)]


def write_lines(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))


def test_a_trace_is_replayed_request_by_request(tmp_path: Path) -> None:
    write_lines(tmp_path / "past.jsonl", LINES)
    scenario_file = tmp_path / "replay.yaml"
    scenario_file.write_text(yaml.safe_dump({"duration": 15, "traffic": {"trace": "past.jsonl"},
                                             "deployments": {"a": FAST}}))
    report = simulate(load_dict(config(dep("a"))), Scenario.from_file(scenario_file), seed=1)
    assert report["requests"] == 30  # the lines before the duration's end
    assert report["availability"] == 1.0
    assert report["ttft"] is not None  # the streamed ones streamed


@pytest.mark.parametrize(("line", "message"), [
    (b'{"time": 1, "model": "chat", "prompt_tokens": 5}', "past.jsonl:2: Object missing required field `output_tokens`"),
    (b'not json', "past.jsonl:2: not a JSON object"),
    (b'{"time": 0.1, "model": "chat", "prompt_tokens": 5, "output_tokens": 5}', "past.jsonl:2: time 0.1 is before"),
    (b'{"time": 1, "model": "chat", "prompt_tokens": 0, "output_tokens": 5}', "past.jsonl:2: prompt_tokens and"),
])
def test_a_bad_trace_line_is_an_error_naming_the_line(tmp_path: Path, line: bytes, message: str) -> None:
    (tmp_path / "past.jsonl").write_bytes(orjson.dumps(LINES[1]) + b"\n" + line + b"\n")
    scenario = Scenario.from_dict({"duration": 10, "traffic": {"trace": "past.jsonl"}}, base=tmp_path)
    with pytest.raises(ScenarioError, match=message.replace("`", ".")):
        simulate(load_dict(config(dep("a"))), scenario)


def test_requests_in_flight_when_a_bad_line_stops_the_run_are_cancelled_not_left_pending(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_lines(tmp_path / "past.jsonl", [*LINES[:10], {"time": 5, "model": "chat"}])  # 10 sent, then a bad line
    slow = {"ttft": 3.0, "tokens_per_second": 5}  # the answers of the last few are still coming
    scenario = Scenario.from_dict({"duration": 10, "traffic": {"trace": "past.jsonl"}, "deployments": {"a": slow}},
                                  base=tmp_path)
    with pytest.raises(ScenarioError, match=r"past\.jsonl:11"):
        simulate(load_dict(config(dep("a"))), scenario)
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # such as "Task was
    # destroyed but it is pending!" or "an error occurred during closing of asynchronous generator"


def test_export_trace_from_the_access_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log_path = tmp_path / "access.log"
    finished = iter([1_800_000_010.0, 1_800_000_011.0, 1_800_000_015.0])
    with log_path.open("wb") as sink:
        log = AccessLog(sink, wall_clock=lambda: next(finished))
        for i, (latency, stream) in enumerate(((2.0, True), (0.5, False), (1.0, False))):
            log(RequestFinished(request_id=f"r{i}", operation="chat", model="chat", deployment="a", status=200,
                                attempts=(), latency=latency, ttft=0.1 if stream else None, stream=stream,
                                usage=Usage(prompt_tokens=10 * (i + 1), completion_tokens=5), cost=0.0))
        log.close()
    out = tmp_path / "trace.jsonl"
    assert main(["export-trace", "--access-log", str(log_path), "-o", str(out)]) == 0
    assert "3 requests" in capsys.readouterr().err
    lines = [orjson.loads(raw) for raw in out.read_bytes().splitlines()]
    assert lines == [  # arrival = finish - latency, from the first arrival on, in order
        {"time": 0.0, "model": "chat", "prompt_tokens": 10, "output_tokens": 5, "stream": True, "operation": None},
        {"time": 2.5, "model": "chat", "prompt_tokens": 20, "output_tokens": 5, "stream": False, "operation": None},
        {"time": 6.0, "model": "chat", "prompt_tokens": 30, "output_tokens": 5, "stream": False, "operation": None},
    ]


def test_export_trace_from_the_spend_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "stellwerk.db"
    records = [SpendRecord(id=f"s{i}", time=1_800_000_000.0 + 10 * i, request_id=f"r{i}", key_id=None, team=None,
                           model="chat", deployment="a", status=200, prompt_tokens=50, completion_tokens=7 + i,
                           cost=0.001, latency=1.0, cached=False) for i in range(5)]

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.append(records)
        await store.close()

    asyncio.run(fill())
    assert main(["export-trace", "--store", f"sqlite:///{db}", "--since", "1800000015"]) == 0
    captured = capsys.readouterr()
    lines = [orjson.loads(raw) for raw in captured.out.splitlines()]
    assert [(line["time"], line["output_tokens"]) for line in lines] == [(0.0, 9), (10.0, 10), (20.0, 11)]
    assert "3 requests" in captured.err
    assert main(["export-trace", "--store", "postgresql://x/y"]) == 2
    assert "SQLite" in capsys.readouterr().err
    assert main(["export-trace", "--access-log", str(tmp_path / "nope.log")]) == 2
