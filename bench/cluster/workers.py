"""Throughput of `stellwerk serve --workers 2` versus one process, on this machine (wrk, json requests).

The same config for both: one model, one deployment with an rpm and tpm far above what is sent (so the
shared-limits path runs: with two workers, through the supervisor's private redis-server). The upstream is
`sim-provider --profile fast`; wrk runs with ``--connections`` connections for ``--seconds`` seconds after
a warm-up. Upstream, wrk and the gateway share the machine's cores: the number to read is the ratio.

    .venv/bin/python bench/cluster/workers.py [--seconds 5] [--connections 32]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from cluster.common import fast_sim, gateway, port_of
from harness.load import chat_body

LUA = """wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = [[{body}]]
"""


def run(upstream: str, workers: int, seconds: int, connections: int, work: Path) -> float:
    config = work / "stellwerk.yaml"
    config.write_text(f"""\
models:
  - name: chat
    deployments:
      - {{id: sim, provider: openai, model: sim-model, api_base: "{upstream}/v1", api_key: sk-sim,
         rpm: 1000000000, tpm: 1000000000}}
""")
    script = work / "post.lua"
    script.write_text(LUA.format(body=chat_body(False).decode()))
    with gateway(config, "--workers", str(workers)) as proc:
        url = f"http://127.0.0.1:{port_of(proc)}/v1/chat/completions"
        subprocess.run(["wrk", "-t2", f"-c{connections}", "-d2s", "-s", str(script), url], capture_output=True,
                       check=True)
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                             capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or re.search(r"Non-2xx or 3xx responses: (\d+)", out) is not None:
        raise SystemExit(f"wrk: {out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with fast_sim() as upstream, tempfile.TemporaryDirectory() as tmp:
        rates = {w: run(upstream, w, args.seconds, args.connections, Path(tmp)) for w in (1, 2)}
    for workers, rate in rates.items():
        print(f"--workers {workers}: {rate:8.0f} req/s")
    print(f"ratio: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
