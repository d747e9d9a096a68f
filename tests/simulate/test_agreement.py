"""Agreement: the same scenario, run for real against ``stellwerk sim-provider`` processes in wall time, and simulated.

Both runs use the same arrivals (the traffic's seed) and the same provider behaviour: each
process gets the :class:`~stellwerk.sim.Profile` the simulator builds for its deployment, and is
reset (outage clock and RNG) when the traffic starts. The real run goes over HTTP with the real
client, on the wall clock; timing differs by scheduling, so the tolerances are on outcomes:

    requests              equal (the same arrivals)
    availability          both >= 0.95, within 0.05 of each other
    primary's share       within 0.15
    attempts per request  within 0.15
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from simulate_support import config, dep

from stellwerk.compose import load_dict
from stellwerk.routing import Router
from stellwerk.simulate import Scenario, simulate
from stellwerk.simulate.recorder import Recorder
from stellwerk.simulate.report import build_report
from stellwerk.simulate.runner import drive
from stellwerk.simulate.traffic import arrivals
from stellwerk.simulate.upstreams import profile_for
from support import STARTUP

SEED = 7
QUICK = {"ttft": 0.02, "tokens_per_second": 0}
SCENARIO = Scenario.from_dict({
    "duration": 6, "traffic": {"rps": 15, "prompt_tokens": 50, "output_tokens": 16},
    "deployments": {"primary": {**QUICK, "errors": {"5xx": 0.2}, "outages": [{"start": 2, "end": 4}]},
                    "backup": QUICK},
})
IDS = ["primary", "backup"]


def pointed(urls: dict[str, str] | None = None) -> dict[str, Any]:
    return config(*(dep(d, **({"api_base": urls[d]} if urls else {})) for d in IDS), strategy="failover", retries=0)


async def sim_provider(tmp_path: Path, index: int, name: str) -> tuple[subprocess.Popen[str], str]:
    """A ``stellwerk sim-provider`` process with the profile the simulator gives deployment ``index``."""
    profile = profile_for(SCENARIO.behaviour(name), name=name, seed=SEED * 1000 + index)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v for k, v in profile.to_dict().items()}))
    proc = subprocess.Popen([sys.executable, "-m", "stellwerk.cli", "sim-provider", "--port", "0", "--profile", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), STARTUP)
    match = re.match(r"sim-provider listening on (\S+)", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    return proc, match.group(1)


@pytest.fixture
async def providers(tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    started = await asyncio.gather(*(sim_provider(tmp_path, i, name) for i, name in enumerate(IDS)),
                                   return_exceptions=True)
    try:
        failed = [s for s in started if isinstance(s, BaseException)]
        if failed:
            raise failed[0]
        yield {name: s[1] for name, s in zip(IDS, started, strict=True) if not isinstance(s, BaseException)}
    finally:
        for s in started:
            if not isinstance(s, BaseException):
                s[0].terminate()
                s[0].wait(10)
                for stream in (s[0].stdout, s[0].stderr):
                    if stream is not None:
                        stream.close()


async def real_run(urls: dict[str, str]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    router = Router(load_dict(pointed(urls)))
    try:
        async with httpx.AsyncClient() as client:
            for url in urls.values():  # outage windows and RNGs from now, as the simulation's from its 0
                (await client.post(url.removesuffix("/v1") + "/_sim/reset")).raise_for_status()
        origin = loop.time()

        def clock() -> float:
            return loop.time() - origin

        recorder = Recorder(clock)
        router.events.subscribe(recorder, *Recorder.kinds)
        traffic = arrivals(SCENARIO.traffic, SCENARIO.duration, router.models, random.Random(SEED))
        await drive(router, traffic, clock)
    finally:
        await router.aclose()
    return build_report(recorder, SCENARIO, IDS, config="real", seed=SEED, limit_violations={})


async def test_a_real_run_against_sim_provider_processes_agrees_with_the_simulation(providers: dict[str, str]) -> None:
    real = await real_run(providers)
    simulated = await asyncio.to_thread(simulate, load_dict(pointed()), SCENARIO, seed=SEED)
    assert real["requests"] == simulated["requests"] > 60
    assert real["availability"] >= 0.95 and simulated["availability"] >= 0.95
    assert abs(real["availability"] - simulated["availability"]) <= 0.05
    share = {r["config"]: r["deployments"]["primary"]["share"] for r in (real, simulated)}
    assert abs(share["real"] - share["config"]) <= 0.15, share
    assert 0.1 < share["config"] < 0.9  # the outage and the errors moved a part of the traffic, not all of it
    assert abs(real["attempts_per_request"] - simulated["attempts_per_request"]) <= 0.15
