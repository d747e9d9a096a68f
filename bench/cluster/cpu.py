"""CPU per request of `stellwerk serve` with limits in this process versus limits shared through Redis.

One gateway process, one `sim-provider --profile fast`, keep-alive requests one at a time, the gateway's
own CPU time (user + system, from /proc) over ``--requests`` after a warm-up; best of ``--rounds``.
Both modes enforce the same limits: a declared key with rpm and tpm (far above what is sent) and a
deployment with rpm and tpm. ``redis`` adds ``server.redis`` (the machine's Redis, a prefix of this run's
own, deleted afterwards): one ADMIT round trip for the key, one for the deployment, two reconciles.

    .venv/bin/python bench/cluster/cpu.py [--requests 2000] [--rounds 3] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from cache.cpu import cpu_seconds
from cluster.common import fast_sim, gateway, port_of
from instructions import KEY, _send

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


def measure(upstream: str, mode: str, redis: str, prefix: str, stream: bool, requests: int, work: Path) -> float:
    config = work / f"stellwerk-{mode}.yaml"
    shared = f"  redis: {redis}\n  redis_prefix: '{prefix}'\n" if mode == "redis" else ""
    config.write_text(CONFIG.format(upstream=upstream, work=work, mode=mode, redis=shared, key=KEY))
    with gateway(config) as proc:
        port = port_of(proc)
        _send(port, 200, stream, True)
        before = cpu_seconds(proc.pid)
        _send(port, requests, stream, True)
        return (cpu_seconds(proc.pid) - before) / requests * 1e6


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
    args = parser.parse_args()
    prefix = f"stellwerk-bench:{os.getpid()}:"
    try:
        with fast_sim() as upstream, tempfile.TemporaryDirectory() as tmp:
            print(f"{'limits':7s} {'json µs':>9s} {'stream µs':>10s}   (gateway CPU per request, best of {args.rounds})")
            results = {}
            for mode in ("local", "redis"):
                results[mode] = [min(measure(upstream, mode, args.redis, prefix, stream, args.requests, Path(tmp))
                                     for _ in range(args.rounds)) for stream in (False, True)]
                print(f"{mode:7s} {results[mode][0]:9.1f} {results[mode][1]:10.1f}", flush=True)
            added = [r - lo for r, lo in zip(results["redis"], results["local"], strict=True)]
            print(f"{'added':7s} {added[0]:9.1f} {added[1]:10.1f}")
    finally:
        cleanup(args.redis, prefix)

if __name__ == "__main__":
    main()
