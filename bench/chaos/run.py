"""Chaos benchmark: what clients see while providers break, with Stellwerk's resilience and without it.

For each scenario, open-loop load (``--rate`` requests per second, evenly spaced, every other one streamed)
runs for ``--duration`` seconds twice:

- **with**: through a Stellwerk gateway with three simulated deployments (``failover`` order, default
  resilience settings; only ``timeout`` is set, see ``TIMEOUT``), while the scenario breaks providers;
- **without**: straight to one simulated provider (the one the scenario breaks first), no gateway.

Per run it reports availability (complete answers: a JSON body with choices, or a stream ending in
``[DONE]`` without an error event), p50/p99 latency of all requests (failures included, to the moment they
failed), and upstream attempts per client request (the sims' own request counters). Everything runs in
this one process on 127.0.0.1: the sims, the gateway and the load generator.

    .venv/bin/python bench/chaos/run.py                      # all scenarios, ~1.5 min, writes RESULTS.md
    .venv/bin/python bench/chaos/run.py --scenarios hang,all-down --duration 3 --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.http.client import HTTPClient, TransportError
from stellwerk.sim import Outage, Profile, SimProvider

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "CHAOS RESULTS"

BASE = Profile(name="realistic-fast", latency_ms=80, latency_sigma=0.3, tokens_per_second=300,
               tokens_per_second_max=600, output_tokens=24)
"""Like the ``realistic`` preset (lognormal time to first token, paced tokens), four times faster."""
TIMEOUT = 2.0
"""The model's ``timeout`` (default 30 s): the one setting a deployment tunes to its provider's latency;
without it a hung provider holds each request for 30 s, longer than a run."""
CLIENT_TIMEOUT = 4.0
"""How long a client waits for one whole answer before giving up (both modes)."""
USER = [{"role": "user", "content": "Tell me about signal boxes."}]


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    faults: Callable[[float], dict[int, dict[str, Any]]]
    """Profile changes per sim index (0, 1, 2), given the run's duration."""


SCENARIOS = [
    Scenario("outage-1-of-3", "the first deployment answers 503 for the middle half of the run",
             lambda d: {0: {"outages": [Outage(start=d / 4, duration=d / 2, status=503)]}}),
    Scenario("flapping", "the first deployment is down 0.5 s of every 1 s",
             lambda d: {0: {"outages": [Outage(start=0.5, duration=0.5, every=1.0, status=503)]}}),
    Scenario("429-storm", "the first deployment rate-limits 90 % of requests (Retry-After: 1)",
             lambda d: {0: {"rate_limit_rate": 0.9, "retry_after_s": 1}}),
    Scenario("5xx-burst", "the first deployment answers 500/502/503 for the middle half of the run",
             lambda d: {0: {"outages": [Outage(start=d / 4, duration=d / 2, status=500)],
                            "error_rate": 0.05}}),
    Scenario("hang", "the first deployment never answers 30 % of requests",
             lambda d: {0: {"hang_rate": 0.3}}),
    Scenario("mid-stream-cuts", "the first deployment cuts 30 % of answers (streams mid-way)",
             lambda d: {0: {"drop_mid_stream_rate": 0.3}}),
    Scenario("all-down", "all three deployments answer 503 for the middle half of the run",
             lambda d: {i: {"outages": [Outage(start=d / 4, duration=d / 2, status=503)]} for i in range(3)}),
]


@dataclass
class RunResult:
    requests: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    attempts: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    notes: str = ""

    @property
    def availability(self) -> float:
        return 100.0 * self.ok / self.requests if self.requests else 0.0

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def attempts_per_request(self) -> float:
        return self.attempts / self.requests if self.requests else 0.0


# -- one client request -------------------------------------------------------------------------------------------
async def one(client: HTTPClient, url: str, model: str, stream: bool) -> str | None:
    """None when the answer is complete, else why not."""
    body = orjson.dumps({"model": model, "messages": USER, **({"stream": True} if stream else {})})
    deadline = time.monotonic() + CLIENT_TIMEOUT
    response = None
    try:
        response = await client.request("POST", url, [("content-type", "application/json")], body,
                                        timeout=CLIENT_TIMEOUT, connect_timeout=1.0)
        if not stream:
            data = await response.read(timeout=max(0.001, deadline - time.monotonic()))
            if response.status != 200:
                return f"HTTP {response.status}"
            return None if orjson.loads(data).get("choices") else "no choices"
        if response.status != 200:
            await response.read(timeout=max(0.001, deadline - time.monotonic()))
            return f"HTTP {response.status}"
        received = bytearray()
        while True:
            chunk = await response.next_chunk(max(0.001, deadline - time.monotonic()))
            if not chunk:
                break
            received += chunk
        if b'"error"' in received:
            return "stream error event"
        return None if received.endswith(b"data: [DONE]\n\n") else "stream cut"
    except TransportError as err:
        return type(err).__name__
    except orjson.JSONDecodeError:
        return "malformed"
    finally:
        if response is not None:
            response.close()


async def drive(url: str, model: str, args: argparse.Namespace) -> RunResult:
    """Open-loop load: ``rate`` requests per second, evenly spaced, for ``duration`` seconds (every other one
    streamed), at most ``max_in_flight`` at once; then wait for the stragglers (each bounded by CLIENT_TIMEOUT)."""
    result = RunResult()
    client = HTTPClient()
    gate = asyncio.Semaphore(args.max_in_flight)
    total = min(args.max_requests, int(args.rate * args.duration))

    async def request(i: int) -> None:
        async with gate:
            started = time.monotonic()
            failure = await one(client, url, model, stream=i % 2 == 1)
            result.latencies.append(time.monotonic() - started)
        if failure is None:
            result.ok += 1
        else:
            result.failures[failure] = result.failures.get(failure, 0) + 1

    tasks = []
    start = time.monotonic()
    try:
        for i in range(total):
            delay = start + i / args.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            result.requests += 1
            tasks.append(asyncio.ensure_future(request(i)))
        await asyncio.gather(*tasks)
    finally:
        await client.close()
    return result


# -- one scenario -------------------------------------------------------------------------------------------------
async def start_sims(scenario: Scenario, duration: float, count: int) -> list[SimProvider]:
    faults = scenario.faults(duration)
    sims = []
    for i in range(count):
        sim = SimProvider(BASE.updated({"seed": 100 + i, **faults.get(i, {})}))
        await sim.start("127.0.0.1", 0)
        sims.append(sim)
    return sims


def gateway_config(sims: list[SimProvider]) -> dict[str, Any]:
    deployments = [{"id": f"sim{i}", "provider": "openai", "model": "sim-model", "api_base": s.base_url}
                   for i, s in enumerate(sims)]
    return {"models": [{"name": "chat", "timeout": TIMEOUT, "deployments": deployments}]}


async def run_with(scenario: Scenario, args: argparse.Namespace) -> RunResult:
    sims = await start_sims(scenario, args.duration, 3)
    gateway = Gateway(load_dict(gateway_config(sims), env={}))
    await gateway.start("127.0.0.1", 0)
    try:
        for sim in sims:
            sim.reset()  # outage windows count from the start of the load
        result = await drive(f"{gateway.base_url}/chat/completions", "chat", args)
        result.attempts = sum(s.stats.requests for s in sims)
        trips = {d: v["breaker"]["trips"] for d, v in gateway.router.health()["models"]["chat"]["deployments"].items()}
        result.notes = "breaker trips " + ", ".join(f"{d}: {n}" for d, n in trips.items() if n) if any(
            trips.values()) else ""
    finally:
        await gateway.close()
        for sim in sims:
            await sim.close(grace=0.1)
    return result


async def run_without(scenario: Scenario, args: argparse.Namespace) -> RunResult:
    [sim] = await start_sims(scenario, args.duration, 1)
    try:
        sim.reset()
        result = await drive(f"{sim.base_url}/chat/completions", "sim-model", args)
        result.attempts = sim.stats.requests
    finally:
        await sim.close(grace=0.1)
    return result


# -- report -------------------------------------------------------------------------------------------------------
def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def table(rows: list[tuple[Scenario, RunResult, RunResult]]) -> list[str]:
    lines = [
        "| scenario | | availability | p50 ms | p99 ms | upstream attempts / request | requests |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario, with_, without in rows:
        for label, r in (("Stellwerk", with_), ("direct", without)):
            lines.append(f"| {scenario.name if label == 'Stellwerk' else ''} | {label} | {r.availability:.1f} % | "
                         f"{ms(r.quantile(0.5))} | {ms(r.quantile(0.99))} | {r.attempts_per_request:.2f} | "
                         f"{r.requests:,} |")
    return lines


def render(rows: list[tuple[Scenario, RunResult, RunResult]], args: argparse.Namespace) -> str:
    out = [
        f"Run {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, Python {sys.version.split()[0]}: "
        f"open-loop load of {args.rate:g} requests/s for {args.duration:g} s per run (evenly spaced, at most "
        f"{args.max_in_flight} in flight), every other one streamed. Sims: {BASE.latency_ms:g} ms mean time "
        f"to first token (lognormal, sigma {BASE.latency_sigma:g}), "
        f"{BASE.tokens_per_second:g}-{BASE.tokens_per_second_max:g} tokens/s, "
        f"{BASE.output_tokens} tokens per answer. Stellwerk: 3 deployments, `failover`, default resilience "
        f"settings, `timeout: {TIMEOUT:g}`. Direct: the client calls the first (broken) deployment itself. "
        f"Clients give up after {CLIENT_TIMEOUT:g} s. Latency percentiles cover all requests, failures "
        "included (until they failed).",
        "",
        *table(rows),
        "",
        "| scenario | what breaks | Stellwerk: failures seen by clients | direct: failures | notes |",
        "|---|---|---|---|---|",
    ]
    for scenario, with_, without in rows:
        def kinds(r: RunResult) -> str:
            return ", ".join(f"{k} x{n}" for k, n in sorted(r.failures.items(), key=lambda kv: -kv[1])) or "none"
        out.append(f"| {scenario.name} | {scenario.what} | {kinds(with_)} | {kinds(without)} | {with_.notes} |")
    return "\n".join(out) + "\n"


def splice(path: Path, section: str, body: str) -> None:
    """Replace the text between ``<!-- BEGIN section -->`` and ``<!-- END section -->`` (appended if absent)."""
    begin, end = f"<!-- BEGIN {section} -->", f"<!-- END {section} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Chaos benchmark results\n\n"
    block = f"{begin}\n{body}{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


async def main(args: argparse.Namespace) -> None:
    chosen = [s for s in SCENARIOS if not args.scenarios or s.name in args.scenarios.split(",")]
    if not chosen:
        raise SystemExit(f"no such scenario; choose from {', '.join(s.name for s in SCENARIOS)}")
    rows = []
    for scenario in chosen:
        print(f"{scenario.name}: {scenario.what}", flush=True)
        with_ = await run_with(scenario, args)
        without = await run_without(scenario, args)
        rows.append((scenario, with_, without))
        for label, r in (("  Stellwerk", with_), ("  direct   ", without)):
            print(f"{label}  availability {r.availability:5.1f} %  p50 {ms(r.quantile(0.5)):>6} ms  "
                  f"p99 {ms(r.quantile(0.99)):>6} ms  attempts/request {r.attempts_per_request:.2f}  "
                  f"({r.requests} requests) {r.notes}", flush=True)
    body = render(rows, args)
    print()
    print(body)
    if not args.no_write:
        splice(RESULTS, SECTION, body)
        print(f"wrote {RESULTS.relative_to(HERE.parent.parent)}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run (default 5)")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    parser.add_argument("--max-in-flight", type=int, default=128, help="concurrency cap (default 128)")
    parser.add_argument("--max-requests", type=int, default=5000, help="cap per run (default 5000)")
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--no-write", action="store_true", help=f"do not update {RESULTS.name}")
    args = parser.parse_args(argv)
    if not (0 < args.duration <= 60 and 0 < args.rate <= 1000 and 0 < args.max_in_flight <= 1024
            and 0 < args.max_requests <= 100_000):
        parser.error("bounds: 0 < duration <= 60, 0 < rate <= 1000, 0 < max-in-flight <= 1024, "
                     "0 < max-requests <= 100000")
    return args


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # the gateway logs every request no deployment answered
    options = parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(options))
    else:
        uvloop.run(main(options))
