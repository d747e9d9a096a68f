"""Load generators: ``wrk`` for throughput at saturation, ``h2load`` for latency at a fixed rate.

Both run pinned to the load CPU and send the same chat-completions body.

*Saturation* (``wrk -t1 -c16``): closed loop, as fast as the target answers.
Errors are socket errors plus HTTP status >= 400 (wrk's own count).

*Fixed rate* (``h2load --h1 -c16 --rps R/16``): each of the 16 keep-alive
connections sends R/16 requests per second (below 16 req/s: R connections, one
request per second each); connections start ``1/R`` apart
(``-r 1 --rate-period``), so requests arrive evenly spaced rather than in bursts
of 16. At rates far below capacity this is effectively open-loop. Per-request
latencies come from h2load's ``--log-file``; the first ``warmup`` seconds are
dropped.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .procs import LOAD_CPU

CONCURRENCY = 16
API_KEY = "sk-bench-key-0123456789"

_SYSTEM = (
    "You are a helpful assistant for a logistics company. Answer precisely and briefly, cite the "
    "relevant policy section when you can, and never invent shipment numbers. "
) * 3


def chat_body(stream: bool) -> bytes:
    """A typical ~1 KB chat-completions request."""
    body: dict[str, object] = {
        "model": "chat",
        "messages": [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": "Where is shipment 4711? It left Hamburg on Monday and should "
                                        "have reached Basel by now. What are my options?"},
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "user": "bench",
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body).encode()


def request_headers() -> dict[str, str]:
    return {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}


@dataclass(frozen=True)
class Saturation:
    requests: int
    seconds: float
    errors: dict[str, int]
    p50_us: float
    p99_us: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True)
class FixedRate:
    rate: float
    connections: int
    achieved_rate: float
    samples: int
    errors: int
    p50_us: float
    p90_us: float
    p99_us: float
    statuses: dict[int, int] = field(default_factory=dict)


_WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk_script(path: Path, stream: bool) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{chat_body(stream).decode()}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in request_headers().items()]
    path.write_text("\n".join(lines) + "\n" + _WRK_DONE)
    return path


def saturate(url: str, stream: bool, seconds: int, workdir: Path, timeout_s: int = 5) -> Saturation:
    """Run ``wrk`` for ``seconds`` at concurrency 16 and return what it counted."""
    script = wrk_script(workdir / f"wrk-{'stream' if stream else 'json'}.lua", stream)
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s",
            f"--timeout={timeout_s}s", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line[6:])
    errors = {k: r[k] for k in ("connect", "read", "write", "status", "timeout") if r[k]}
    return Saturation(r["requests"], r["duration_us"] / 1e6, errors, r["p50_us"], r["p99_us"])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def fixed_rate(url: str, stream: bool, rate: float, seconds: float, warmup: float, workdir: Path) -> FixedRate:
    """Send ``rate`` req/s for ``warmup + seconds`` with h2load; latency percentiles of the measured part."""
    tag = "stream" if stream else "json"
    body_file = workdir / f"body-{tag}.json"
    body_file.write_bytes(chat_body(stream))
    log = workdir / f"h2load-{tag}-{rate:g}.log"
    log.unlink(missing_ok=True)
    conns = min(CONCURRENCY, max(1, round(rate)))  # at low rates, fewer connections with a request each second
    total = conns * max(1, round(rate * (seconds + warmup) / conns))
    argv = ["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-t1", f"-c{conns}", f"-n{total}",
            f"--rps={rate / conns:g}", "-r1", f"--rate-period={max(1, round(1000 / rate))}ms",
            "-d", str(body_file), "--log-file", str(log), "-T10"]
    argv += [a for k, v in request_headers().items() for a in ("-H", f"{k}: {v}")]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=(seconds + warmup) * 3 + 30,
                         check=False)
    if not log.exists():
        raise RuntimeError(f"h2load failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    rows = [tuple(int(x) for x in ln.split("\t")[:3]) for ln in log.read_text().splitlines() if ln.strip()]
    if not rows:
        raise RuntimeError(f"h2load logged no request: {out.stdout.strip()[-300:]}")
    first = min(r[0] for r in rows)
    measured = [r for r in rows if r[0] >= first + warmup * 1e6]
    statuses: dict[int, int] = {}
    for _, status, _ in measured:
        statuses[status] = statuses.get(status, 0) + 1
    ok = sorted(float(d) for _, s, d in measured if 200 <= s < 300)
    span = (max(r[0] for r in measured) - min(r[0] for r in measured)) / 1e6 if len(measured) > 1 else 0.0
    return FixedRate(rate, conns, (len(measured) - 1) / span if span else 0.0, len(ok), len(measured) - len(ok),
                     percentile(ok, 50), percentile(ok, 90), percentile(ok, 99), statuses)
