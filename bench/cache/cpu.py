"""CPU per request of `stellwerk serve` with the response cache off, on a miss, and on an exact hit (wall clock).

The gateway's own CPU time (user + system, from /proc) over ``--requests`` keep-alive requests after a
warm-up, against one ``sim-provider --profile fast``: ``off`` (no model caches), ``miss`` (exact mode,
a new question every request: lookup, proxied answer, store) and ``hit`` (the same question every time).
Noisier than bench/instructions.py, but in µs. Best of ``--rounds``.

    .venv/bin/python bench/cache/cpu.py [--requests 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from harness.procs import free_port
from instructions import SERVE, _send, _wait, fast_sim


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(upstream: str, cache: str, stream: bool, requests: int, work: Path) -> float:
    config = work / f"stellwerk-{cache}.yaml"
    cache_line = "" if cache == "off" else "\n    cache: {mode: exact}"
    config.write_text(f"""\
models:
  - name: chat{cache_line}
    deployments:
      - {{id: sim, provider: openai, model: sim-model, api_base: "{upstream}/v1", api_key: sk-sim,
         price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}}}
""")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/healthz", 60)
        same = cache == "hit"
        _send(port, 200, stream, same=same)
        before = cpu_seconds(proc.pid)
        _send(port, requests, stream, same=same)
        return (cpu_seconds(proc.pid) - before) / requests * 1e6
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with fast_sim() as upstream, tempfile.TemporaryDirectory() as tmp:
        print(f"{'cache':6s} {'json µs':>9s} {'stream µs':>10s}   (gateway CPU per request, best of {args.rounds})")
        for cache in ("off", "miss", "hit"):
            json = min(measure(upstream, cache, False, args.requests, Path(tmp)) for _ in range(args.rounds))
            streamed = min(measure(upstream, cache, True, args.requests, Path(tmp)) for _ in range(args.rounds))
            print(f"{cache:6s} {json:9.1f} {streamed:10.1f}", flush=True)


if __name__ == "__main__":
    main()
