"""CPU per request of `stellwerk serve` with limits in this process versus limits shared through Redis.

One gateway process, one `sim-provider --profile fast`, keep-alive requests one at a time, the gateway's
own CPU time (user + system, from /proc) over ``--requests`` after a warm-up; best of ``--rounds``.
Both modes enforce the same limits: a declared key with rpm and tpm (far above what is sent) and a
deployment with rpm and tpm. ``redis`` adds ``server.redis`` (the machine's Redis, a prefix of this run's
own, deleted afterwards): one ADMIT round trip for the key, one for the deployment, two reconciles.

    .venv/bin/python bench/cluster/cpu.py [--requests 2000] [--rounds 3] [--redis redis://127.0.0.1:6379/0]
    .venv/bin/python bench/cluster/cpu.py --instructions [--requests 300]

``--instructions`` counts the gateway's instructions per request under callgrind instead (deterministic,
but blind to the kernel's side of the extra system calls, which is most of a round trip's cost here).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from cache.cpu import cpu_seconds
from cluster.common import fast_sim, gateway, port_of
from harness.procs import free_port
from instructions import KEY, SERVE, _send, _total, _wait

CONFIG = """\
models:
  - name: chat
    deployments:
      - {{id: sim, provider: openai, model: sim-model, api_base: "{upstream}/v1", api_key: sk-sim,
         rpm: 1000000000, tpm: 1000000000, price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}}}
server:
  master_key: sk-bench-master-0123456789
  store: sqlite:///{work}/bench-{mode}.db
{redis}keys:
  - name: bench
    key: {key}
    rpm: 1000000000
    tpm: 1000000000
"""


def measure(upstream: str, mode: str, redis: str, prefix: str, stream: bool, requests: int, work: Path,
            instructions: bool = False) -> float:
    """µs of CPU per request (instructions per request with ``instructions``)."""
    config = work / f"stellwerk-{mode}.yaml"
    shared = f"  redis: {redis}\n  redis_prefix: '{prefix}'\n" if mode == "redis" else ""
    config.write_text(CONFIG.format(upstream=upstream, work=work, mode=mode, redis=shared, key=KEY))
    if instructions:
        return _callgrind(config, stream, requests, work / f"callgrind.{mode}.{int(stream)}")
    with gateway(config) as proc:
        port = port_of(proc)
        _send(port, 200, stream, True)
        before = cpu_seconds(proc.pid)
        _send(port, requests, stream, True)
        return (cpu_seconds(proc.pid) - before) / requests * 1e6


def _callgrind(config: Path, stream: bool, requests: int, prefix: Path) -> float:
    port = free_port()
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={prefix}.%p", sys.executable,
                             "-c", SERVE, "serve", "--config", str(config), "--port", str(port)],
                            env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(port, "/healthz", 180)
        _send(port, 50, stream, True)
        subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
        _send(port, requests, stream, True)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        return _total(f"{prefix}.{proc.pid}") / requests
    finally:
        proc.terminate()
        proc.wait(30)


def cleanup(redis: str, prefix: str) -> None:
    import redis as redis_py

    client = redis_py.Redis.from_url(redis)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--instructions", action="store_true", help="instructions per request (callgrind)")
    args = parser.parse_args()
    prefix = f"stellwerk-bench:{os.getpid()}:"
    try:
        with fast_sim() as upstream, tempfile.TemporaryDirectory() as tmp:
            unit = "instructions" if args.instructions else "µs"
            print(f"{'limits':7s} {'json':>12s} {'stream':>12s}   ({unit} of the gateway per request, "
                  f"best of {args.rounds})")
            results = {}
            for mode in ("local", "redis"):
                results[mode] = [min(measure(upstream, mode, args.redis, prefix, stream, args.requests, Path(tmp),
                                             args.instructions) for _ in range(args.rounds)) for stream in (False, True)]
                print(f"{mode:7s} {results[mode][0]:12,.1f} {results[mode][1]:12,.1f}", flush=True)
            added = [r - lo for r, lo in zip(results["redis"], results["local"], strict=True)]
            print(f"{'added':7s} {added[0]:12,.1f} {added[1]:12,.1f}")
    finally:
        cleanup(args.redis, prefix)

if __name__ == "__main__":
    main()
