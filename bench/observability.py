"""What observability costs per request: metrics, access log and the dashboard feed, on versus off, in one run.

    .venv/bin/python bench/observability.py                       # base = this checkout's merge-base with main
    .venv/bin/python bench/observability.py --base <commit> --requests 300 --cpu-requests 3000

Variants, all against one simulated upstream (``sim-provider --profile fast``):

* ``base``: the ``src`` of ``--base`` (a commit before observability: no metrics, feed or access log),
  exported with ``git archive`` into a temporary folder;
* ``metrics``: this checkout with ``server.access_log: off`` (Prometheus metrics and the dashboard
  feed listen to every request; they cannot be turned off);
* ``metrics+log``: this checkout with the access log written to a file.

For each: callgrind instructions per request (``bench/instructions.py``, repeatable to ±0.1 %), and
CPU microseconds per request of the plain process (its threads' run time from ``/proc/PID/task/*/schedstat``
over ``--cpu-requests`` keep-alive requests, user and kernel time; noisy on a shared machine, so rounds
alternate the variants and the median is reported). OpenTelemetry tracing is off in every variant: off, it installs nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness.procs import free_port
from harness.targets import stellwerk_yaml
from instructions import SERVE, _send, _wait, measure

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process's threads in seconds, from ``schedstat`` (nanoseconds; ``stat`` counts 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def cpu_per_request(src: Path, upstream: str, requests: int, stream: bool, work: Path, server: str) -> float:
    """Microseconds of gateway CPU per request (no valgrind)."""
    config = work / "cpu.yaml"
    config.write_text(stellwerk_yaml(upstream, server=server))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--config", str(config), "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, "PYTHONPATH": str(src), "PYTHONHASHSEED": "0"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/healthz", 60)
        _send(port, 200, stream)
        before = _cpu_seconds(proc.pid)
        _send(port, requests, stream)
        return (_cpu_seconds(proc.pid) - before) / requests * 1e6
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="commit without observability (default: merge-base with main)")
    parser.add_argument("--requests", type=int, default=300, help="requests counted under callgrind")
    parser.add_argument("--cpu-requests", type=int, default=3000, help="requests per CPU-time round")
    parser.add_argument("--rounds", type=int, default=7, help="CPU-time rounds (alternating variants)")
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    base = args.base or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                                       capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(f"git archive {base} src | tar -x -C {work}", shell=True, cwd=ROOT, check=True)
        (work / "base").mkdir()
        (work / "src").rename(work / "base" / "src")
        log = work / "access.log"
        variants = {
            "base": (work / "base" / "src", ""),
            "metrics": (ROOT / "src", "server:\n  access_log: 'off'\n"),
            "metrics+log": (ROOT / "src", f"server:\n  access_log: '{log}'\n"),
        }
        port = free_port()
        stellwerk = Path(sys.executable).parent / "stellwerk"
        sim = subprocess.Popen([str(stellwerk), "sim-provider", "--host", "127.0.0.1", "--port", str(port),
                                "--profile", "fast", "--output-tokens", "20"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        upstream = f"http://127.0.0.1:{port}"
        try:
            _wait(port, "/v1/models", 30)
            print(f"base commit {base[:10]}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
            if not args.no_callgrind:
                print(f"\n{'variant':14s} {'json':>12s} {'stream':>12s}   (callgrind instructions per request)")
                counts: dict[str, tuple[float, float]] = {}
                for name, (src, server) in variants.items():
                    counts[name] = (measure(src, upstream, args.requests, False, work, server=server),
                                    measure(src, upstream, args.requests, True, work, server=server))
                    json, streamed = counts[name]
                    extra = ""
                    if name != "base":
                        b = counts["base"]
                        extra = f"   {100 * (json / b[0] - 1):+.1f} % / {100 * (streamed / b[1] - 1):+.1f} %"
                    print(f"{name:14s} {json:12,.0f} {streamed:12,.0f}{extra}", flush=True)
            print(f"\n{'variant':14s} {'json µs':>10s} {'stream µs':>10s}   (CPU per request, median of "
                  f"{args.rounds} rounds of {args.cpu_requests})")
            samples: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in variants}
            for _ in range(args.rounds):
                for name, (src, server) in variants.items():
                    samples[name][0].append(cpu_per_request(src, upstream, args.cpu_requests, False, work, server))
                    samples[name][1].append(cpu_per_request(src, upstream, args.cpu_requests, True, work, server))
            medians = {name: (statistics.median(j), statistics.median(s)) for name, (j, s) in samples.items()}
            for name, (json, streamed) in medians.items():
                b = medians["base"]
                extra = "" if name == "base" else f"   {json - b[0]:+.1f} µs / {streamed - b[1]:+.1f} µs"
                print(f"{name:14s} {json:10.1f} {streamed:10.1f}{extra}")
            print(f"\naccess log lines written: {sum(1 for _ in log.open('rb')) if log.exists() else 0}")
        finally:
            sim.terminate()
            sim.wait(10)


if __name__ == "__main__":
    main()
