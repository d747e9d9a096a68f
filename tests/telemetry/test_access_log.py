"""The access log: one JSON line per request, payloads only when ``server.log_payloads`` is on."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from stellwerk.errors import Attempt, Outcome
from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from stellwerk.telemetry import RequestFinished
from stellwerk.telemetry.access_log import AccessLog
from stellwerk.usage import Usage
from support import USER, closed_port_url, config, deployment, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]

SECRET = "my secret prompt 4711"


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_one_line_per_request_without_payloads(tmp_path: Path, start_sim: StartSim, start_gateway: StartGateway,
                                                     make_client: MakeClient) -> None:
    sim = await start_sim(output_tokens=3)
    log = tmp_path / "access.log"
    gateway = await start_gateway(config(
        model("chat", deployment("down", closed_port_url()), deployment("up", sim.base_url,
              price={"input_per_mtok": 1, "output_per_mtok": 1}), retries=0),
        access_log=str(log)))
    client = make_client(gateway)
    await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": SECRET}],
                                         extra_headers={"x-request-id": "req-1"})
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    async for _ in stream:
        pass
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="unknown", messages=USER)  # refused before routing: no line
    await gateway.close(grace=0)

    first, second = lines(log)
    assert first["request_id"] == "req-1"
    assert first["key_id"] is None and first["cache"] is None
    assert (first["model"], first["deployment"], first["status"], first["attempts"]) == ("chat", "up", 200, 2)
    assert first["completion_tokens"] == 3 and first["prompt_tokens"] > 0 and first["cost_usd"] > 0
    assert first["latency_ms"] > 0 and first["ttft_ms"] is None and first["stream"] is False
    assert "served by up" in first["route"]
    assert first["failed"][0].startswith("down: ")
    assert first["time"].endswith("Z") and first["time"][10] == "T"
    assert second["stream"] is True and second["ttft_ms"] is not None
    assert SECRET not in log.read_text()
    assert "request" not in first and "response" not in first


async def test_payloads_only_when_asked(tmp_path: Path, start_sim: StartSim, start_gateway: StartGateway,
                                        make_client: MakeClient) -> None:
    sim = await start_sim()
    log = tmp_path / "access.log"
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url)), access_log=str(log),
                                         log_payloads=True))
    client = make_client(gateway)
    answer = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": SECRET}])
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    await gateway.close(grace=0)
    first, second = lines(log)
    assert first["request"] == [{"role": "user", "content": SECRET}]
    assert first["response"] == answer.choices[0].message.content
    assert second["response"] == streamed


async def test_failed_request_line(tmp_path: Path, start_gateway: StartGateway) -> None:
    log = tmp_path / "access.log"
    gateway = await start_gateway(config(model("chat", deployment("gone", closed_port_url()), retries=0),
                                         access_log=str(log)))
    with pytest.raises(Exception):  # noqa: B017 - the router's own error type does not matter here
        await gateway.router.chat(model="chat", messages=USER)
    await gateway.close(grace=0)
    (line,) = lines(log)
    assert line["deployment"] is None and line["status"] == 503 and line["attempts"] == 1 and line["route"] == ""


def test_listener_writes_buffered_and_flushes_on_close() -> None:
    sink = io.BytesIO()
    log = AccessLog(sink, wall_clock=lambda: 1_796_000_000.25)
    record = RequestFinished(request_id="r", operation="chat", model="m", deployment=None, status=502,
                             attempts=(Attempt("d", Outcome.MOVE_ON, "boom", status=500),), latency=0.5, ttft=None,
                             stream=True, usage=Usage(), cost=0.0)
    log(record)  # outside an event loop: written through
    log.close()
    (line,) = [orjson.loads(x) for x in sink.getvalue().splitlines()]
    assert line["time"] == "2026-11-30T00:53:20.250Z"
    assert line["failed"] == ["d: 500"] and line["status"] == 502
    assert "limited" not in line


def test_a_rate_limit_refusal_names_its_scope() -> None:
    sink = io.BytesIO()
    log = AccessLog(sink, wall_clock=lambda: 1_796_000_000.25)
    log(RequestFinished(request_id="r", operation="chat", model="m", deployment=None, status=429, attempts=(),
                        latency=0.001, ttft=None, stream=False, usage=Usage(), cost=0.0, key_id="key_1",
                        limited="team"))
    log.close()
    (line,) = [orjson.loads(x) for x in sink.getvalue().splitlines()]
    assert line["limited"] == "team" and line["status"] == 429 and line["key_id"] == "key_1"


def test_observability_keys_are_checked() -> None:
    from stellwerk import load_dict
    from stellwerk.errors import ConfigError

    base = config(model("chat", deployment("up", closed_port_url())))
    for server, expected in [({"otel": {"sample_ratio": 2}}, "server.otel.sample_ratio"),
                             ({"otel": {"endpoint": "x", "nope": 1}}, "server.otel.nope"),
                             ({"access_log": ""}, "server.access_log"),
                             ({"metrics_public": "yes"}, "server.metrics_public")]:
        with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
            load_dict({**base, "server": server})
    loaded = load_dict({**base, "server": {"otel": {}, "access_log": "stdout", "log_payloads": True}})
    assert loaded.server.otel is not None and loaded.server.otel.service_name == "stellwerk"
    assert loaded.server.otel.sample_ratio == 1.0 and loaded.server.otel.endpoint is None


def test_stdout_sink(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from stellwerk.telemetry.access_log import open_sink

    sink = open_sink("stdout")
    assert sink is not None and open_sink("off") is None
    log = AccessLog(sink, wall_clock=lambda: 0.0)
    log(RequestFinished(request_id="out", operation="chat", model="m", deployment="d", status=200, attempts=(),
                        latency=0.1, ttft=None, stream=False, usage=Usage(1, 2), cost=0.0))
    log.close()  # stdout is not closed: the log does not own it
    (line,) = capsysbinary.readouterr().out.splitlines()
    assert orjson.loads(line)["request_id"] == "out"
