"""Soak: does `stellwerk serve` keep its memory flat over about a million mixed requests?

    .venv/bin/pip install -e '.[bench]'          # matplotlib, for the plot
    .venv/bin/python bench/soak.py                # until 1,000,000 requests or 15 minutes
    .venv/bin/python bench/soak.py --requests 50000 --max-minutes 2 --plot /tmp/soak.png

The gateway runs on CPU 1; on CPU 0 run two upstreams (``harness/minimal_upstream.py``, and
``sim-provider --profile fast --error-rate 0.2``) and the load. The load mixes, request by request (``wrk`` with a Lua script, 16
connections, in segments of ``--interval`` seconds):

- 60 % non-streamed chats to model ``chat`` (one healthy deployment, on the minimal upstream);
- 25 % streamed chats (20 content chunks, usage) to ``chat``;
- 15 % non-streamed chats to model ``flaky``: its first deployment (the sim) answers 5xx to one request in five,
  which the attempt loop fails over to the healthy second one (and the breaker may eject the first);

and, beside it, a Python client that opens 10 streams a second and hangs up after the first bytes (a
client that goes away mid-stream). The gateway's RSS (``VmRSS``) is sampled every ``--interval`` seconds and
plotted against requests served; the script prints the samples, the growth from the first minute to
the end, and writes the plot.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import probe
from harness.load import chat_body, request_headers
from harness.procs import LOAD_CPU, PROXY_CPU, Proc, Procs, free_port
from harness.targets import CHAT_PATH, Upstream, stellwerk_bin

BENCH = Path(__file__).resolve().parent

CONFIG = """\
models:
  - name: chat
    deployments:
      - {{id: sim, provider: openai, model: sim-model, api_base: "{ok}/v1", api_key: sk-sim,
         price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}}}
  - name: flaky
    strategy: failover
    deployments:
      - {{id: flaky, provider: openai, model: sim-model, api_base: "{flaky}/v1", api_key: sk-sim}}
      - {{id: backup, provider: openai, model: sim-model, api_base: "{ok}/v1", api_key: sk-sim}}
"""

LUA = """\
local bodies = {{[[{json}]], [[{stream}]], [[{flaky}]]}}
local n = 0
request = function()
  n = n + 1
  local r = n % 100
  local i = 1
  if r >= 60 then i = 2 end
  if r >= 85 then i = 3 end
  return wrk.format("POST", nil, nil, bodies[i])
end
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "{auth}"
"""


def _sim(procs: Procs, name: str, *extra: str) -> str:
    port = free_port()
    proc = procs.start(name, [str(stellwerk_bin()), "sim-provider", "--port", str(port), "--profile", "fast",
                              "--output-tokens", "20", *extra], LOAD_CPU)
    proc.wait_ready(lambda: probe.is_ok(port, "GET", "/v1/models"), 30)
    return f"http://127.0.0.1:{port}"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Hangups(threading.Thread):
    """Opens streams and closes the socket after the first bytes of the answer, ``rate`` times a second."""

    def __init__(self, port: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.rate, self.count, self.stop = port, rate, 0, threading.Event()
        body = chat_body(True)
        head = "".join(f"{k}: {v}\r\n" for k, v in request_headers().items())
        self.request = (f"POST {CHAT_PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{head}\r\n"
                        ).encode() + body

    def run(self) -> None:
        while not self.stop.wait(1 / self.rate):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    sock.sendall(self.request)
                    sock.recv(64)
                self.count += 1
            except OSError:
                pass


def _wrk(url: str, script: Path, seconds: int) -> tuple[int, int]:
    """(requests, errors) of one wrk segment."""
    out = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    requests = errors = 0
    for line in out.splitlines():
        words = line.split()
        if "requests in" in line:
            requests = int(words[0])
        elif line.strip().startswith("Non-2xx"):
            errors += int(words[-1])
        elif line.strip().startswith("Socket errors"):
            errors += sum(int(w.strip(",")) for w in words[2::2] if w.strip(",").isdigit())
    return requests, errors


def plot(samples: list[tuple[float, int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot([s[1] / 1e6 for s in samples], [s[2] for s in samples], marker=".", linewidth=1)
    ax.set_xlabel("requests served (millions)")
    ax.set_ylabel("gateway RSS (MB)")
    ax.set_ylim(bottom=0, top=max(s[2] for s in samples) * 1.3)
    ax.set_title("stellwerk serve: RSS every 10 s (json, streams, failovers, hang-ups)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def soak(args: argparse.Namespace, work: Path) -> list[tuple[float, int, float]]:
    with Procs(work / "logs") as procs:
        _, ok = Upstream("minimal").start(procs)  # the cheapest upstream leaves CPU 0 to the load
        flaky = _sim(procs, "sim-flaky", "--error-rate", "0.2")
        config = work / "stellwerk.yaml"
        config.write_text(CONFIG.format(ok=ok, flaky=flaky))
        port = free_port()
        gateway: Proc = procs.start("stellwerk", [str(stellwerk_bin()), "serve", "--config", str(config),
                                                  "--port", str(port)], PROXY_CPU)
        gateway.wait_ready(lambda: probe.is_ok(port, "GET", "/healthz"), 30)
        bodies = {k: chat_body(s).decode() for k, s in (("json", False), ("stream", True))}
        bodies["flaky"] = bodies["json"].replace('"model": "chat"', '"model": "flaky"')
        script = work / "soak.lua"
        script.write_text(LUA.format(auth=request_headers()["authorization"], **bodies))
        url = f"http://127.0.0.1:{port}{CHAT_PATH}"
        hangups = Hangups(port, args.hangups)
        hangups.start()
        samples: list[tuple[float, int, float]] = []
        served = errors = 0
        started = time.monotonic()
        sampler_stop = threading.Event()

        def sample() -> None:
            while True:
                samples.append((time.monotonic() - started, served, _rss_mb(gateway.pid)))
                print(f"  {samples[-1][0]:6.0f} s {served:>10,} requests  RSS {samples[-1][2]:.1f} MB", flush=True)
                if sampler_stop.wait(args.interval):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        while served < args.requests and time.monotonic() - started < args.max_minutes * 60:
            n, e = _wrk(url, script, int(args.interval))
            served, errors = served + n, errors + e
        sampler_stop.set()
        sampler.join()
        hangups.stop.set()
        hangups.join()
        samples.append((time.monotonic() - started, served, _rss_mb(gateway.pid)))
        print(f"{served:,} requests in {samples[-1][0]:.0f} s, {errors:,} errors (non-2xx + socket), "
              f"{hangups.count:,} streams hung up mid-answer; peak RSS {gateway.peak_rss_mb():.1f} MB")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--max-minutes", type=float, default=15)
    parser.add_argument("--interval", type=float, default=10, help="seconds between RSS samples")
    parser.add_argument("--hangups", type=float, default=10, help="streams per second the client abandons")
    parser.add_argument("--plot", type=Path, default=BENCH / "soak.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        samples = soak(args, Path(tmp))
    minute = next((s for s in samples if s[0] >= 60), samples[0])
    print(f"RSS after the first minute {minute[2]:.1f} MB, at the end {samples[-1][2]:.1f} MB "
          f"({samples[-1][2] - minute[2]:+.1f} MB over {samples[-1][1] - minute[1]:,} requests)")
    plot(samples, args.plot)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
