"""Choose the server, HTTP client and JSON libraries by measurement.

Run with the project's venv after ``bench/libs/setup.sh`` (see bench/README.md):

    .venv/bin/python bench/libs/run.py [--seconds 5] [--no-write]

(a) servers answering a fixed small JSON to wrk POSTs: CPU µs/request of the
    server process, pinned to CPU 1, wrk on CPU 0 (same method as bench/run.py);
(b) async HTTP clients doing keep-alive POSTs to nginx (or, without nginx,
    Stellwerk's server) on CPU 1: CPU µs/request of the client process on CPU 0;
(c) JSON loads+dumps of a chat request and response, pinned to CPU 1.

Candidates run from bench/.venv-libs; results go into RESULTS.md between the
``LIBS RESULTS`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from harness import load, probe, report  # noqa: E402
from harness.machine import BackgroundMeter, describe  # noqa: E402
from harness.procs import LOAD_CPU, PROXY_CPU, Procs, StartError, free_port  # noqa: E402

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


def bench_servers(procs: Procs, seconds: int, workdir: Path) -> list[str]:
    rows = ["| server | req/s @c16 | errors | CPU µs/req |", "|---|--:|--:|--:|"]
    for server in SERVERS:
        port = free_port()
        print(f"== server: {server.name}", flush=True)
        proc = procs.start("lib-server", server.command(port), PROXY_CPU, env=ENV, cwd=SERVERS_DIR)
        try:
            proc.wait_ready(lambda p=port: probe.is_ok(p, "POST", PATH, load.chat_body(False)), timeout=30)
            url = f"http://127.0.0.1:{port}{PATH}"
            load.saturate(url, False, 1, workdir)
            cpu0 = proc.cpu_seconds()
            sat = load.saturate(url, False, seconds, workdir)
            cpu_us = (proc.cpu_seconds() - cpu0) / sat.requests * 1e6 if sat.requests else float("nan")
            print(f"  {sat.rps:,.0f} req/s, {cpu_us:.1f} µs CPU/req, errors {sat.errors}", flush=True)
            rows.append(f"| {server.name} | {sat.rps:,.0f} | {sat.error_count} | {cpu_us:.1f} |")
        except (StartError, RuntimeError) as exc:
            print(f"  n/a: {exc}", flush=True)
            rows.append(f"| {server.name} | n/a | | n/a: {str(exc)[:120].replace('|', '/')} |")
        finally:
            procs.stop(proc)
    return rows


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


def bench_clients(procs: Procs, seconds: int, workdir: Path) -> list[str]:
    url, server_name = _client_server(procs, workdir)
    rows = [f"Server: {server_name} on CPU 1; client on CPU 0, 16 concurrent tasks, one client object.", "",
            "| client | req/s | errors | CPU µs/req |", "|---|--:|--:|--:|"]
    for client in CLIENTS:
        print(f"== client: {client}", flush=True)
        argv = ["taskset", "-c", LOAD_CPU, str(PY), str(LIBS / "client_bench.py"), client, url,
                "--seconds", str(seconds)]
        out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=seconds + 60,
                             check=False)
        try:
            r = json.loads(out.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            err = (out.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  n/a: {err}", flush=True)
            rows.append(f"| {client} | n/a | | n/a: {err[:120].replace('|', '/')} |")
            continue
        rps = r["requests"] / r["seconds"] if r["seconds"] else 0
        print(f"  {rps:,.0f} req/s, {r['cpu_us_per_request']} µs CPU/req, errors {r['errors']}", flush=True)
        rows.append(f"| {client} | {rps:,.0f} | {r['errors']} | {r['cpu_us_per_request']} |")
    return rows


def bench_json() -> list[str]:
    print("== json", flush=True)
    argv = ["taskset", "-c", PROXY_CPU, str(PY), str(LIBS / "json_bench.py")]
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **ENV}, timeout=300, check=False)
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return [f"n/a: {(out.stderr.strip().splitlines() or ['no output'])[-1]}"]
    rows = [f"loads + dumps, best of 5 x 20,000; request {r['request_bytes']} B, response {r['response_bytes']} B.",
            "", "| library | request µs | response µs |", "|---|--:|--:|"]
    for row in r["results"]:
        print(f"  {row['library']}: {row['request_us']} / {row['response_us']} µs", flush=True)
        rows.append(f"| {row['library']} | {row['request_us']} | {row['response_us']} |")
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=5, help="measured seconds per server / client (default 5)")
    p.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    if not PY.exists():
        sys.exit(f"{PY} missing: run bench/libs/setup.sh first")
    workdir = BENCH / ".work" / "libs"
    workdir.mkdir(parents=True, exist_ok=True)
    started, meter = time.monotonic(), BackgroundMeter()
    with Procs(workdir / "logs") as procs:
        servers = bench_servers(procs, args.seconds, workdir)
        clients = bench_clients(procs, args.seconds, workdir)
    json_rows = bench_json()
    other = meter.cores()
    env = describe()
    versions = ", ".join(f"{d} {_version(d)}" for d in
                         ("uvloop", "httptools", "uvicorn", "granian", "aiohttp", "httpx", "orjson", "msgspec"))
    lines = [f"- **date**: {env['date']}", f"- **machine**: {env['machine']}", f"- **python**: {env['python']}",
             f"- **versions**: {versions}",
             f"- **other load during the run**: {other:.2f} cores busy with processes outside the benchmark",
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
