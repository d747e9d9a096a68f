"""Memory and start-up as the configuration grows: 1 model against 100 models with 1,000 deployments, and a
task model with the semantic classifier against none.

    .venv/bin/python bench/growth.py              # 3 starts per configuration
    .venv/bin/python bench/growth.py --starts 5 --requests 5000

For each configuration `stellwerk serve` is started ``--starts`` times (pinned to CPU 1, the minimal upstream on
CPU 0). Start-up is spawn → first ``GET /healthz`` 200, the median and the range over the starts. Then one
instance serves ``--requests`` non-streamed chats spread over all models (every deployment gets traffic:
the models use ``weighted-random``), and its peak RSS (``VmHWM``) is reported with its RSS when idle before them.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import probe
from harness.load import chat_body
from harness.procs import PROXY_CPU, Procs, free_port
from harness.targets import CHAT_PATH, Upstream, stellwerk_bin


def config(upstream: str, models: int, per_model: int, task: bool) -> str:
    lines = ["models:"]
    for m in range(models):
        lines += [f"  - name: chat{m if m else ''}", "    strategy: weighted-random", "    deployments:"]
        lines += [f"      - {{id: d{m}-{d}, provider: openai, model: sim-model, api_base: \"{upstream}/v1\", "
                  "api_key: sk-sim, price: {input_per_mtok: 0.15, output_per_mtok: 0.60}}"
                  for d in range(per_model)]
    if task:
        lines += ["  - name: auto", "    strategy: task", "    strategy_options:", "      default: general",
                  "      routes:", "        - {name: code, target: chat}", "        - {name: general, target: chat}",
                  "    deployments:",
                  f"      - {{id: auto-0, provider: openai, model: sim-model, api_base: \"{upstream}/v1\", "
                  "api_key: sk-sim}"]
    return "\n".join(lines) + "\n"


def _status_kb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _send(port: int, requests: int, models: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    base = chat_body(False)
    for i in range(requests):
        name = f"chat{i % models}" if i % models else "chat"
        conn.request("POST", CHAT_PATH, base.replace(b'"model": "chat"', b'"model": "%s"' % name.encode()),
                     {"content-type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {body[:200]!r}")


def measure(label: str, text: str, models: int, args: argparse.Namespace, procs: Procs, work: Path) -> None:
    path = work / f"{label.replace(' ', '-')}.yaml"
    path.write_text(text)
    startups: list[float] = []
    for n in range(args.starts):
        port = free_port()
        proc = procs.start(f"stellwerk-{label}-{n}", [str(stellwerk_bin()), "serve", "--config", str(path),
                                                       "--port", str(port)], PROXY_CPU)
        startups.append(proc.wait_ready(lambda p=port: probe.is_ok(p, "GET", "/healthz"), 60))
        if n == args.starts - 1:
            idle = _status_kb(proc.pid, "VmRSS")
            _send(port, args.requests, models)
            peak = _status_kb(proc.pid, "VmHWM")
            print(f"| {label} | {statistics.median(startups) * 1000:,.0f} ({min(startups) * 1000:,.0f} to "
                  f"{max(startups) * 1000:,.0f}) | {idle:.1f} | {peak:.1f} |", flush=True)
        procs.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Procs(Path(tmp) / "logs") as procs:
        work = Path(tmp)
        _, upstream = Upstream("minimal").start(procs)
        print(f"| configuration | start-up ms, median (range of {args.starts}) | idle RSS MB | peak RSS MB "
              f"after {args.requests:,} requests |\n|---|--:|--:|--:|")
        measure("1 model, 1 deployment", config(upstream, 1, 1, False), 1, args, procs, work)
        measure("100 models, 1,000 deployments", config(upstream, 100, 10, False), 100, args, procs, work)
        measure("1 model + task model (wordllama classifier)", config(upstream, 1, 1, True), 1, args, procs, work)


if __name__ == "__main__":
    main()
