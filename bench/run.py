"""Measure Stellwerk's added cost per proxied request against direct, nginx and LiteLLM.

Run with the project's venv (see bench/README.md):

    .venv/bin/python bench/run.py                  # full run, writes bench/RESULTS.md
    .venv/bin/python bench/run.py --duration 3 --targets direct,stellwerk --no-write

One upstream (``stellwerk sim-provider --profile fast``) and the load generators
run on CPU 0; the proxy under test runs alone on CPU 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from harness import machine, report
from harness.measure import MODES, Plan, TargetResult, measure
from harness.procs import Procs, StartError
from harness.rounds import combine
from harness.targets import TARGETS, Upstream

BENCH = Path(__file__).resolve().parent
SECTION = "GATEWAY RESULTS"
UPSTREAM_LABELS = {"sim": "`stellwerk sim-provider --profile fast`",
                   "minimal": "`harness/minimal_upstream.py` (uvloop + httptools, fixed answer)",
                   "standin": "stand-in (`harness/standin_upstream.py`)"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default="direct,stellwerk,nginx,litellm", help="comma-separated subset")
    p.add_argument("--duration", type=int, default=10, help="measured wrk seconds per mode (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured wrk seconds before each run (default 2)")
    p.add_argument("--rate", type=float, default=200, help="fixed rate for latency, req/s (default 200)")
    p.add_argument("--latency-seconds", type=float, default=10, help="measured seconds at the fixed rate")
    p.add_argument("--litellm-duration", type=int, default=5, help="measured wrk seconds per mode for LiteLLM")
    p.add_argument("--litellm-load", type=float, default=0.3,
                   help="LiteLLM's fixed rate as a fraction of its own saturation req/s (default 0.3): "
                        "it saturates far below --rate")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure all targets this many times in turn and report medians (LiteLLM: once)")
    p.add_argument("--output-tokens", type=int, default=20, help="tokens (= SSE content chunks) per answer")
    p.add_argument("--upstream", choices=("sim", "minimal", "standin"), default="sim",
                   help="sim: stellwerk sim-provider; minimal: harness/minimal_upstream.py (uvloop + httptools, "
                        "fixed answer); standin: harness/standin_upstream.py")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--section", default=SECTION, help=f"the RESULTS.md section to replace (default {SECTION!r})")
    p.add_argument("--no-write", action="store_true", help="print the tables, leave RESULTS.md alone")
    return p.parse_args()


def plans(args: argparse.Namespace) -> tuple[Plan, Plan]:
    """(plan for most targets, plan for LiteLLM)."""
    base = Plan(args.duration, args.warmup, (args.rate,), args.latency_seconds)
    slow = Plan(args.litellm_duration, args.warmup, (args.rate,), args.latency_seconds,
                capacity_fraction=args.litellm_load)
    return base, slow


def baseline_plan(base: Plan, results: dict[str, TargetResult]) -> Plan:
    """The direct run's plan: latency at every rate some target used, so "added" compares like with like."""
    mode_rates: dict[str, tuple[float, ...]] = {}
    for mode in MODES:
        used = [rate for r in results.values() for rate in (r.modes[mode].latency if mode in r.modes else {})]
        mode_rates[mode] = tuple(sorted(set(used) | set(base.rates), reverse=True))
    return replace(base, mode_rates=mode_rates)


def settings(args: argparse.Namespace, upstream: Upstream) -> list[str]:
    return [
        f"upstream: {UPSTREAM_LABELS[upstream.kind]}, "
        f"{upstream.output_tokens} output tokens (streaming: one SSE chunk per token + usage chunk), on CPU 0",
        "load: wrk 1 thread, 16 connections, on CPU 0; proxy under test alone on CPU 1 (`taskset`)",
        f"rounds: {args.rounds}" + (" (all targets in turn, medians; LiteLLM once)" if args.rounds > 1 else ""),
        f"saturation: {args.warmup} s warm-up + {args.duration} s measured per mode "
        f"(LiteLLM: {args.litellm_duration} s); CPU µs/req = Δ(utime+stime) of the proxy's process tree "
        "÷ completed requests",
        f"latency: h2load, 16 keep-alive connections, evenly spaced at {args.rate:g} req/s "
        f"(LiteLLM: {args.litellm_load:.0%} of its saturation req/s), 1 s warm-up + {args.latency_seconds:g} s; "
        "added = target - direct at the same rate (difference of percentiles)",
        "peak RSS: VmHWM summed over the proxy's process tree after all runs; start-up: spawn → first 200 "
        "(Stellwerk `GET /healthz`, nginx/LiteLLM a chat completion)",
    ]


def main() -> int:
    args = parse_args()
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        sys.exit(f"unknown targets {unknown}; choose from {list(TARGETS)}")
    upstream = Upstream(args.upstream, args.output_tokens)
    if reason := upstream.unavailable():
        sys.exit(f"{reason} (use --upstream standin to try the harness without it)")
    workdir = BENCH / ".work"
    workdir.mkdir(exist_ok=True)
    rounds: dict[str, list[TargetResult]] = {name: [] for name in names}
    started = time.monotonic()
    meter = machine.BackgroundMeter()
    with Procs(workdir / "logs") as procs:
        try:
            up_proc, up_url = upstream.start(procs)
        except StartError as exc:
            sys.exit(f"upstream did not start: {exc}")
        base, slow = plans(args)
        for r in range(args.rounds):
            # direct goes last: it is the latency baseline at every rate the others were measured at;
            # LiteLLM, slow to start and to measure, only runs in the first round
            for name in sorted(names, key=lambda n: n == "direct"):
                if name == "litellm" and r > 0:
                    continue
                done = {n: rs[0] for n, rs in rounds.items() if rs}
                plan = baseline_plan(base, done) if name == "direct" else slow if name == "litellm" else base
                print(f"== {name}" + (f" (round {r + 1} of {args.rounds})" if args.rounds > 1 else ""), flush=True)
                if not up_proc.alive():
                    result = TargetResult(name, plan, error="not measured: the upstream died")
                else:
                    result = measure(TARGETS[name], plan, procs, up_proc, up_url, workdir)
                if result.error:
                    print(f"  n/a: {result.error}", flush=True)
                rounds[name].append(result)
    results = {name: combine(rs) for name, rs in rounds.items()}
    other_load = meter.cores()  # every benchmark process is stopped and reaped by now
    env = machine.describe()
    env["other load during the run"] = f"{other_load:.2f} cores busy with processes outside the benchmark (mean)"
    body = report.render(results, env, settings(args, upstream))
    print(f"\n{body}\n(total {time.monotonic() - started:.0f} s)")
    if not args.no_write:
        report.splice(args.results, args.section, body)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
