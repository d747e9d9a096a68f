"""Choose the server, HTTP client and JSON libraries by measurement.

Run with the project's venv after ``bench/libs/setup.sh`` (see bench/README.md):

    .venv/bin/python bench/libs/run.py [--seconds 3] [--rounds 3] [--no-write]

(a) servers answering a fixed small JSON to wrk POSTs: CPU µs/request of the
    server process, pinned to CPU 1, wrk on CPU 0 (same method as bench/run.py);
(b) async HTTP clients doing keep-alive POSTs to nginx (or, without nginx,
    Stellwerk's server) on CPU 1: CPU µs/request of the client process on CPU 0;
(c) JSON loads+dumps of a chat request and response, pinned to CPU 1.

Candidates run from bench/.venv-libs. On a shared, noisy machine one run of a
candidate can be off by tens of percent, so (a) and (b) visit the candidates
round-robin for ``--rounds`` rounds and report medians (and the range), rather
than measuring one candidate after another. Results go into RESULTS.md between
the ``LIBS RESULTS`` markers.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from harness import load, probe, report  # noqa: E402
from harness.machine import BackgroundMeter, describe  # noqa: E402
from harness.procs import LOAD_CPU, PROXY_CPU, Proc, Procs, StartError, free_port  # noqa: E402

sys.path.insert(0, str(BENCH / "libs" / "servers"))
from payload import RESPONSE  # noqa: E402

LIBS = BENCH / "libs"
SERVERS_DIR = LIBS / "servers"
VENV = BENCH / ".venv-libs"
PY = VENV / "bin" / "python"
SRC = BENCH.parent / "src"
ENV = {"PYTHONPATH": f"{SERVERS_DIR}:{SRC}", "PYTHONDONTWRITEBYTECODE": "1"}
SECTION = "LIBS RESULTS"
PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class Server:
    name: str
    argv: tuple[str, ...]  # "{port}" is replaced

    def command(self, port: int) -> list[str]:
        return [a.replace("{port}", str(port)) for a in self.argv]


_UVICORN = (str(VENV / "bin" / "uvicorn"), "asgi_app:app", "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning", "--lifespan", "off", "--host", "127.0.0.1",
            "--port", "{port}")
_GRANIAN = (str(VENV / "bin" / "granian"), "--workers", "1", "--runtime-threads", "1", "--runtime-mode", "st",
            "--http", "1", "--loop", "uvloop",
            "--no-ws", "--log-level", "warning", "--host", "127.0.0.1", "--port", "{port}")
SERVERS = [
    Server("stellwerk.http.server (uvloop+httptools)", (str(PY), str(SERVERS_DIR / "stellwerk_app.py"), "{port}")),
    Server("uvicorn, raw ASGI (uvloop, httptools)", _UVICORN),
    Server("granian, RSGI", (*_GRANIAN, "--interface", "rsgi", "rsgi_app:app")),
    Server("granian, ASGI", (*_GRANIAN, "--interface", "asgi", "asgi_app:app")),
    Server("aiohttp.web (uvloop)", (str(PY), str(SERVERS_DIR / "aiohttp_app.py"), "{port}")),
]
CLIENTS = ["stellwerk", "aiohttp", "httpx"]


def _version(dist: str) -> str:
    out = subprocess.run([str(PY), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


@dataclass
class Samples:
    """Per-round measurements of one candidate; the table shows medians (rounds are interleaved)."""

    cpu_us: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    errors: int = 0
    failure: str | None = None

    def row(self, name: str) -> str:
        if self.failure or not self.cpu_us:
            return f"| {name} | n/a | | n/a: {(self.failure or 'no data')[:120].replace('|', '/')} | |"
        spread = f"{min(self.cpu_us):.1f}-{max(self.cpu_us):.1f}"
        return (f"| {name} | {statistics.median(self.rps):,.0f} | {self.errors} "
                f"| {statistics.median(self.cpu_us):.1f} | {spread} |")


HEADER = ["| {what} | req/s | errors | CPU µs/req (median) | range over rounds |", "|---|--:|--:|--:|--:|"]


def bench_servers(procs: Procs, seconds: int, rounds: int, workdir: Path) -> list[str]:
    """All servers run at once on CPU 1 (idle ones cost nothing); wrk visits them round-robin."""
    samples = {s.name: Samples() for s in SERVERS}
    running: dict[str, tuple[Proc, str]] = {}
    for server in SERVERS:
        port = free_port()
        proc = procs.start(f"server-{len(running)}", server.command(port), PROXY_CPU, env=ENV, cwd=SERVERS_DIR)
        try:
            proc.wait_ready(functools.partial(probe.is_ok, port, "POST", PATH, load.chat_body(False)), timeout=30)
            url = f"http://127.0.0.1:{port}{PATH}"
            load.saturate(url, False, 1, workdir)  # warm-up
            running[server.name] = (proc, url)
        except (StartError, RuntimeError) as exc:
            samples[server.name].failure = str(exc)
            procs.stop(proc)
    for r in range(rounds):
        for name, (proc, url) in running.items():
            try:
                cpu0 = proc.cpu_seconds()
                sat = load.saturate(url, False, seconds, workdir)
                cpu = proc.cpu_seconds() - cpu0
            except (RuntimeError, OSError) as exc:
                samples[name].failure = str(exc)
                continue
            if sat.requests:
                samples[name].cpu_us.append(cpu / sat.requests * 1e6)
                samples[name].rps.append(sat.rps)
            samples[name].errors += sat.error_count
            print(f"  round {r + 1} {name}: {sat.rps:,.0f} req/s, "
                  f"{cpu / max(1, sat.requests) * 1e6:.1f} µs CPU/req", flush=True)
    for proc, _ in running.values():
        procs.stop(proc)
    return [h.format(what="server") for h in HEADER] + [samples[s.name].row(s.name) for s in SERVERS]


def _client_server(procs: Procs, workdir: Path) -> tuple[str, str]:
    """A fast server for the clients to talk to: nginx answering a fixed JSON, or Stellwerk's server."""
    port = free_port()
    if shutil.which("nginx"):
        prefix = workdir / "nginx-static"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        answer = RESPONSE.decode()
        (prefix / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
            f"events {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n"
            f"    client_body_temp_path {prefix}/tmp;\n    keepalive_requests 1000000;\n"
            f"    server {{\n        listen 127.0.0.1:{port};\n        default_type application/json;\n"
            f"        location / {{ return 200 '{answer}'; }}\n    }}\n}}\n")
        argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(prefix / "nginx.conf")]
        name = "nginx (return 200)"
    else:
        argv, name = [str(PY), str(SERVERS_DIR / "stellwerk_app.py"), str(port)], "stellwerk.http.server"
    proc = procs.start("client-server", argv, PROXY_CPU, env=ENV, cwd=SERVERS_DIR)
    proc.wait_ready(lambda: probe.is_ok(port, "POST", PATH, load.chat_body(False)), timeout=30)
    return f"http://127.0.0.1:{port}{PATH}", name


def bench_clients(procs: Procs, seconds: int, rounds: int, workdir: Path) -> list[str]:
    """Each client in a fresh process per round, round-robin, against one fast server."""
    url, server_name = _client_server(procs, workdir)
    samples = {c: Samples() for c in CLIENTS}
    for r in range(rounds):
        for client in CLIENTS:
            argv = ["taskset", "-c", LOAD_CPU, str(PY), str(LIBS / "client_bench.py"), client, url,
                    "--seconds", str(seconds)]
            out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **ENV},
                                 timeout=seconds + 60, check=False)
            try:
                res = json.loads(out.stdout.strip().splitlines()[-1])
            except (IndexError, ValueError):
                samples[client].failure = (out.stderr.strip().splitlines() or ["no output"])[-1]
                continue
            if res["cpu_us_per_request"] is not None:
                samples[client].cpu_us.append(res["cpu_us_per_request"])
                samples[client].rps.append(res["requests"] / res["seconds"])
            samples[client].errors += res["errors"]
            print(f"  round {r + 1} {client}: {res['cpu_us_per_request']} µs CPU/req", flush=True)
    return [f"Server: {server_name} on CPU 1; client on CPU 0, 16 concurrent tasks sharing one client object.",
            "", *[h.format(what="client") for h in HEADER], *[samples[c].row(c) for c in CLIENTS]]


def bench_json() -> list[str]:
    print("== json", flush=True)
    argv = ["taskset", "-c", PROXY_CPU, str(PY), str(LIBS / "json_bench.py")]
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=300, check=False)
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return [f"n/a: {(out.stderr.strip().splitlines() or ['no output'])[-1]}"]
    rows = [f"loads + dumps, best of 7 x 10,000; request {r['request_bytes']} B, response {r['response_bytes']} B.",
            "", "| library | request µs | response µs |", "|---|--:|--:|"]
    for row in r["results"]:
        print(f"  {row['library']}: {row['request_us']} / {row['response_us']} µs", flush=True)
        rows.append(f"| {row['library']} | {row['request_us']} | {row['response_us']} |")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=3, help="measured seconds per server / client and round (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3); tables show medians")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    if not PY.exists():
        sys.exit(f"{PY} missing: run bench/libs/setup.sh first")
    workdir = BENCH / ".work" / "libs"
    workdir.mkdir(parents=True, exist_ok=True)
    started, meter = time.monotonic(), BackgroundMeter()
    with Procs(workdir / "logs") as procs:
        print("== servers", flush=True)
        servers = bench_servers(procs, args.seconds, args.rounds, workdir)
        print("== clients", flush=True)
        clients = bench_clients(procs, args.seconds, args.rounds, workdir)
    json_rows = bench_json()
    other = meter.cores()
    env = describe()
    versions = ", ".join(f"{d} {_version(d)}" for d in
                         ("uvloop", "httptools", "uvicorn", "granian", "aiohttp", "httpx", "orjson", "msgspec"))
    lines = [f"- **date**: {env['date']}", f"- **machine**: {env['machine']}", f"- **python**: {env['python']}",
             f"- **versions**: {versions}",
             f"- **other load during the run**: {other:.2f} cores busy with processes outside the benchmark",
             f"- **method**: {args.rounds} interleaved rounds of {args.seconds} s per candidate; medians",
             "", "#### (a) Servers: fixed JSON answer to a ~1 KB POST, wrk -t1 -c16", "", *servers,
             "", "#### (b) HTTP clients: keep-alive POSTs", "", *clients,
             "", "#### (c) JSON: chat request and response", "", *json_rows]
    body = "\n".join(lines) + "\n"
    print(f"\n{body}\n(total {time.monotonic() - started:.0f} s)")
    if not args.no_write:
        report.splice(args.results, SECTION, body)
        print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
