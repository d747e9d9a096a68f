"""`stellwerk demo`: the whole demo run for a few seconds with a fast schedule, plus its pure parts."""

from __future__ import annotations

import argparse
import asyncio
import io
from typing import Any

import pytest
from rich.console import Console

from stellwerk.demo import DemoSettings, add_arguments, run, run_demo
from stellwerk.demo.scenario import Scenario, is_down, last_change, next_change
from stellwerk.demo.tally import Tally, percentile
from stellwerk.demo.view import DeploymentInfo, Header, render_board
from stellwerk.errors import ConfigError
from stellwerk.sim import Outage
from stellwerk.telemetry import StatsCollector

# Fast providers; the primary is down in [1 s, 2 s) only. The secondary keeps the scenario's
# 3 % errors and 2 % rate limits, so some requests go on to the backup.
FAST: dict[str, dict[str, Any]] = {
    "primary": {"latency_ms": 5, "tokens_per_second": 0, "outages": [{"start": 1.0, "duration": 1.0}]},
    "secondary": {"latency_ms": 10, "tokens_per_second": 0},
    "backup": {"latency_ms": 20, "tokens_per_second": 0},
}


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, force_terminal=False, no_color=True), out


async def test_traffic_fails_over_while_the_primary_is_down_and_returns_after() -> None:
    console, out = plain_console()
    settings = DemoSettings(duration=4.6, rps=60, concurrency=32, live=False, plain_every=0.5, overrides=FAST)

    result = await run_demo(settings, console=console)

    tally = result.tally
    client = tally.client_totals
    assert result.sent >= 150
    assert client.completed == result.sent
    assert client.ok == client.completed, dict(client.errors)  # every request answered: 100 %
    assert client.streams > 0

    def primary_share(second: int) -> float:
        served = tally.served(second)
        return served["primary"] / sum(served.values())

    # Invariants only (the demo runs in real time on a machine that may be loaded): the primary serves
    # while it is up, the others while it is down, and it gets its traffic back once a health probe
    # (every second) has seen it answer again. Shares, not exact seconds: a request sent just before a
    # boundary may reach the provider after it.
    assert primary_share(0) >= 0.5
    assert primary_share(1) <= 0.5
    assert tally.served(1)["secondary"] > 0
    assert max(primary_share(3), primary_share(4)) >= 0.5

    # The breaker stops sending to the dead primary after 3 failures: far fewer failures than the
    # requests of its outage (about 60), even with 32 requests in flight when it goes down.
    assert tally.failovers >= 3
    assert tally.failovers == result.stats.failovers
    assert sum(d.failures for d in result.stats.deployments.values()) >= tally.failovers
    assert result.stats.deployments["primary"].failures < 40
    texts = [event.text for event in tally.events]
    assert "primary goes down (HTTP 503 for 1 s)" in texts
    assert "primary is back up" in texts
    assert any(t.startswith("primary HTTP 503 → served by secondary") for t in texts)
    assert any(t.startswith("primary answers again after") for t in texts)

    printed = out.getvalue()
    assert "primary goes down" in printed
    assert "Summary" in printed and "100.0 % answered" in printed
    assert "what happened:" in printed


async def test_live_board_until_stopped() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100, height=30, force_terminal=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.6, stop.set)
    settings = DemoSettings(duration=0, rps=40, live=True, refresh=0.1, overrides=FAST)

    result = await run_demo(settings, console=console, stop=stop)

    assert 0.5 < result.elapsed < 30  # stops when told (the bound only catches a demo that never stops)
    assert result.tally.client_totals.completed == result.sent > 0
    printed = out.getvalue()
    assert "Stellwerk demo" in printed and "who answered" in printed and "Summary" in printed


def test_board_fits_small_terminals() -> None:
    tally = Tally(["primary", "secondary"], clock=lambda: 5.5, schedules={"primary": (Outage(5, 8, 15),)})
    tally.tick()
    out = io.StringIO()
    console = Console(file=out, width=80, height=24, no_color=True)
    header = Header("http://127.0.0.1:1/v1", "chat", ("primary", "secondary"),
                    {"primary": DeploymentInfo(0.15, 0.6, 120.0)}, "primary down 8 s every 15 s from 5 s",
                    20, 0.5, 30)
    console.print(render_board(header, tally, StatsCollector(), height=24, width=80))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 24
    assert "DOWN" in out.getvalue()
    assert "primary goes down (HTTP 503 for 8 s)" in out.getvalue()


def test_schedule_arithmetic() -> None:
    periodic = (Outage(start=5, duration=8, every=20),)
    assert not is_down(periodic, 4.9) and is_down(periodic, 5.0) and not is_down(periodic, 13.0)
    assert is_down(periodic, 25.5)
    assert next_change(periodic, 0.0) == 5.0
    assert next_change(periodic, 6.0) == 7.0
    assert next_change(periodic, 14.0) == 11.0
    assert last_change(periodic, 4.0) is None
    assert last_change(periodic, 6.0) == 1.0
    assert last_change(periodic, 14.0) == 1.0
    once = (Outage(start=1, duration=2),)
    assert next_change(once, 2.0) == 1.0 and next_change(once, 3.5) is None
    assert last_change(once, 3.5) == 0.5


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile(range(1, 101), 0.99) == 99
    assert percentile([7.0], 0.99) == 7.0


def test_scenario_fills_in_provider_urls_and_seeds() -> None:
    scenario = Scenario.load(seed=7)
    assert list(scenario.providers) == ["primary", "secondary", "backup"]
    assert [p.seed for p in scenario.providers.values()] == [7, 8, 9]
    assert scenario.providers["primary"].outages
    config = scenario.config({name: f"http://127.0.0.1:{9000 + i}/v1" for i, name in enumerate(scenario.providers)})
    model = config.models[0]
    assert (model.name, model.strategy) == ("chat", "failover")
    assert [d.api_base for d in model.deployments] == [f"http://127.0.0.1:{p}/v1" for p in (9000, 9001, 9002)]


def test_scenario_rejects_unknown_overrides() -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        Scenario.load(overrides={"tertiary": {"latency_ms": 1}})
    with pytest.raises(ConfigError, match=r"providers\.primary"):
        Scenario.load(overrides={"primary": {"latency_ms": -1}})


def test_cli_rejects_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args(["--rps", "0", "--stream-share", "2"])) == 2
    assert "--rps must be > 0" in capsys.readouterr().err
