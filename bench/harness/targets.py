"""What gets measured: the simulated upstream and the four ways of reaching it.

Each target writes its config under the work dir, starts pinned to the proxy
CPU, and is ready when its probe answers 200 (``GET /healthz`` for Stellwerk, a
first successful chat completion for nginx and LiteLLM). ``unavailable()``
returns a reason instead of raising, so a missing tool yields "n/a" in the
table rather than a crash.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import probe
from .load import API_KEY, chat_body, request_headers
from .procs import LOAD_CPU, PROXY_CPU, PROXY_CPUS, Proc, Procs, free_port

BENCH = Path(__file__).resolve().parent.parent
CHAT_PATH = "/v1/chat/completions"
LITELLM_VENV = BENCH / ".venv-litellm"


def stellwerk_yaml(upstream: str, *, model: str = "", server: str = "") -> str:
    """The benchmarks' gateway config: model ``chat`` with one deployment on the simulated upstream, at a fixed
    price. ``model``: more lines of the model (each starting with a newline and 4 spaces); ``server``: text
    after the models (a ``server:`` block)."""
    return f"""\
models:
  - name: chat{model}
    deployments:
      - id: sim
        provider: openai
        model: sim-model
        api_base: {upstream}/v1
        api_key: sk-sim
        price: {{input_per_mtok: 0.15, output_per_mtok: 0.60}}
{server}"""


def stellwerk_bin() -> Path:
    return Path(sys.executable).parent / "stellwerk"


def _chat_ok(port: int) -> bool:
    return probe.is_ok(port, "POST", CHAT_PATH, chat_body(False), request_headers())


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _has_subcommand(argv: list[str]) -> str | None:
    try:
        out = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return str(exc)
    return None if out.returncode == 0 else (out.stderr.strip().splitlines() or ["failed"])[-1]


@dataclass
class Running:
    """A started target: where to send requests, and its process (None for ``direct``)."""

    url: str
    proc: Proc | None
    startup_s: float | None


class Target(Protocol):
    name: str

    def unavailable(self) -> str | None: ...

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running: ...


# -- the upstream ---------------------------------------------------------------------------------

UPSTREAM_SCRIPTS = {"minimal": "minimal_upstream.py", "standin": "standin_upstream.py"}


@dataclass(frozen=True)
class Upstream:
    """The upstream, pinned to the load CPU. ``kind``: "sim" (``stellwerk sim-provider --profile fast``),
    "minimal" (harness/minimal_upstream.py: uvloop + httptools, a fixed answer; the cheapest upstream, so it
    limits the proxies least) or "standin" (harness/standin_upstream.py, Stellwerk's own HTTP server)."""

    kind: str = "sim"
    output_tokens: int = 20

    def unavailable(self) -> str | None:
        if self.kind in UPSTREAM_SCRIPTS:
            return None
        reason = _has_subcommand([str(stellwerk_bin()), "sim-provider"])
        return f"`stellwerk sim-provider` unavailable: {reason}" if reason else None

    def start(self, procs: Procs) -> tuple[Proc, str]:
        port = free_port()
        if self.kind in UPSTREAM_SCRIPTS:
            argv = [sys.executable, str(BENCH / "harness" / UPSTREAM_SCRIPTS[self.kind]), "--port", str(port)]
        else:
            argv = [str(stellwerk_bin()), "sim-provider", "--host", "127.0.0.1", "--port", str(port),
                    "--profile", "fast"]
        proc = procs.start("upstream", [*argv, "--output-tokens", str(self.output_tokens)], LOAD_CPU)
        proc.wait_ready(lambda: _chat_ok(port), timeout=30)
        return proc, f"http://127.0.0.1:{port}"


# -- targets ---------------------------------------------------------------------------------------

class Direct:
    name = "direct"
    startup_timeout = 0.0

    def unavailable(self) -> str | None:
        return None

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running:
        return Running(upstream + CHAT_PATH, None, None)


class Stellwerk:
    name = "stellwerk"
    startup_timeout = 30.0
    workers = 1

    def unavailable(self) -> str | None:
        reason = _has_subcommand([str(stellwerk_bin()), "serve"])
        return f"`stellwerk serve` unavailable: {reason}" if reason else None

    def argv(self) -> tuple[list[str], dict[str, str] | None]:
        return [str(stellwerk_bin())], None

    def config(self, upstream: str, workdir: Path) -> str:
        return stellwerk_yaml(upstream, model="\n    strategy: failover")

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running:
        workdir = workdir / self.name
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "stellwerk.yaml"
        config.write_text(self.config(upstream, workdir))
        port = free_port()
        command, env = self.argv()
        argv = [*command, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        if self.workers > 1:
            argv += ["--workers", str(self.workers)]
        proc = procs.start(self.name, argv, PROXY_CPUS if self.workers > 1 else PROXY_CPU, env=env)
        startup = proc.wait_ready(lambda: probe.is_ok(port, "GET", "/healthz"), self.startup_timeout)
        return Running(f"http://127.0.0.1:{port}{CHAT_PATH}", proc, startup)


class StellwerkKeys(Stellwerk):
    """The same gateway with keys, limits and the spend ledger on (issue 10): ``server.master_key``, a SQLite
    store, and a declared key with rpm, tpm, max_parallel and a 1-day budget, which the load sends (its
    ``Bearer`` is that key's secret). The ledger's writer thread is in the process, so its CPU is counted.
    ``--targets stellwerk,stellwerk-keys`` gives the cost of the governance layer in one run."""

    name = "stellwerk-keys"

    def config(self, upstream: str, workdir: Path) -> str:
        server = f"""\
server:
  master_key: sk-bench-master-0123456789
  store: sqlite:///{workdir}/keys.db
keys:
  - name: bench
    key: {API_KEY}
    rpm: 1000000000
    tpm: 1000000000
    max_parallel: 1000
    budget: {{usd: 1000000, period: 1d}}
"""
        return stellwerk_yaml(upstream, model="\n    strategy: failover", server=server)


class StellwerkLimits(StellwerkKeys):
    """``stellwerk-keys`` with an rpm and tpm on the deployment too (far above what is sent), all counted in
    this process: the local side of ``--targets stellwerk-limits,stellwerk-redis`` (issue 15)."""

    name = "stellwerk-limits"

    def config(self, upstream: str, workdir: Path) -> str:
        return super().config(upstream, workdir).replace(
            "        api_key: sk-sim\n", "        api_key: sk-sim\n        rpm: 1000000000\n        tpm: 1000000000\n")


class StellwerkRedis(StellwerkLimits):
    """``stellwerk-limits`` with ``server.redis``: the key's and the deployment's rpm and tpm are checked and
    counted across replicas (one ADMIT round per request, or per batch of requests that meet in flight;
    reconciliations ride along). The redis-server is the run's own, pinned to the load CPU with the upstream
    and wrk, so the gateway's CPU is the figure."""

    name = "stellwerk-redis"

    def unavailable(self) -> str | None:
        return super().unavailable() or (None if shutil.which("redis-server") else "redis-server is not installed")

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running:
        port = free_port()
        redis = procs.start("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], LOAD_CPU)
        redis.wait_ready(lambda: _port_open(port), timeout=30)
        self._redis = f"redis://127.0.0.1:{port}/0"
        return super().start(procs, upstream, workdir)

    def config(self, upstream: str, workdir: Path) -> str:
        return super().config(upstream, workdir).replace("server:\n", f"server:\n  redis: {self._redis}\n", 1)


class StellwerkLedger(Stellwerk):
    """The gateway with the spend ledger alone (``server.store``, no master key): one record per request,
    journaled before the answer and stored by the writer thread. ``--targets stellwerk-ledger,stellwerk-keys``
    isolates what auth and limits add on top of it; ``stellwerk,stellwerk-ledger`` what the ledger costs."""

    name = "stellwerk-ledger"

    def config(self, upstream: str, workdir: Path) -> str:
        return stellwerk_yaml(upstream, model="\n    strategy: failover",
                              server=f"server:\n  store: sqlite:///{workdir}/ledger.db\n")


class StellwerkPure(Stellwerk):
    """The same gateway with its compiled request path turned off (``STELLWERK_PURE=1``: every module from
    its ``.py``), so that ``--targets stellwerk,stellwerk-pure`` measures the native build in one run."""

    name = "stellwerk-pure"

    def argv(self) -> tuple[list[str], dict[str, str] | None]:
        return [str(stellwerk_bin())], {"STELLWERK_PURE": "1"}


class StellwerkBefore(Stellwerk):
    """Another checkout of Stellwerk (``STELLWERK_BEFORE_SRC``: its ``src`` folder) run by this venv's Python,
    so that a change is measured against its parent in one run: ``--targets stellwerk,before``."""

    name = "before"

    def unavailable(self) -> str | None:
        src = os.environ.get("STELLWERK_BEFORE_SRC")
        return None if src and Path(src, "stellwerk").is_dir() else "set STELLWERK_BEFORE_SRC to another checkout's src/"

    def argv(self) -> tuple[list[str], dict[str, str] | None]:
        command = "import sys; from stellwerk.cli import main; sys.exit(main())"
        return [sys.executable, "-c", command], {"PYTHONPATH": os.environ["STELLWERK_BEFORE_SRC"]}


class StellwerkBeforeLedger(StellwerkBefore, StellwerkLedger):
    """``stellwerk-ledger``'s config run from ``STELLWERK_BEFORE_SRC``."""

    name = "before-ledger"


class StellwerkBeforeKeys(StellwerkBefore, StellwerkKeys):
    """``stellwerk-keys``'s config run from ``STELLWERK_BEFORE_SRC``: with ``before-ledger``, what auth and
    limits added before a change, in the same run as after it."""

    name = "before-keys"


def nginx_conf(prefix: Path, port: int, upstream: str, *, single_process: bool = False) -> str:
    """nginx tuned as a reverse proxy at its best, not its defaults: one worker, no access log, keep-alive
    on both sides without a request cap (``keepalive_requests``: the default 1,000 reconnects every thousand
    requests), a pool of idle upstream connections kept for as long as the client side, and SSE forwarded
    as it arrives (``proxy_buffering off``). ``single_process``: no master process (for callgrind)."""
    temp = "\n".join(f"    {kind}_temp_path {prefix}/tmp/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""\
daemon off;
{"master_process off;" if single_process else ""}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
{temp}
    upstream sim {{
        server {upstream.removeprefix("http://")};
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


class StellwerkWorkers(Stellwerk):
    """``stellwerk serve --workers 2`` (the scale-out issue), on both CPUs: its throughput against one worker's.
    Unavailable until ``serve`` has the option. CPU per request is summed over the process tree."""

    name = "stellwerk-w2"
    workers = 2

    def unavailable(self) -> str | None:
        try:
            out = subprocess.run([str(stellwerk_bin()), "serve", "--help"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout
        except OSError as exc:
            return str(exc)
        return None if "--workers" in out else "`stellwerk serve` has no --workers option yet (scale-out issue)"


class Nginx:
    name = "nginx"
    startup_timeout = 30.0

    def unavailable(self) -> str | None:
        return None if shutil.which("nginx") else "nginx not installed (apt-get install nginx)"

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running:
        prefix = workdir / "nginx"
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(prefix, port, upstream))
        argv = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
        proc = procs.start(self.name, argv, PROXY_CPU)
        startup = proc.wait_ready(lambda: _chat_ok(port), self.startup_timeout)
        return Running(f"http://127.0.0.1:{port}{CHAT_PATH}", proc, startup)


class LiteLLM:
    """LiteLLM's proxy from bench/.venv-litellm (see setup/litellm.sh), offline, one worker."""

    name = "litellm"
    startup_timeout = 120.0

    def unavailable(self) -> str | None:
        exe = LITELLM_VENV / "bin" / "litellm"
        return None if exe.exists() else f"{exe} missing (run bench/setup/litellm.sh)"

    def start(self, procs: Procs, upstream: str, workdir: Path) -> Running:
        config = workdir / "litellm.yaml"
        config.write_text(f"""\
model_list:
  - model_name: chat
    litellm_params:
      model: openai/sim-model
      api_base: {upstream}/v1
      api_key: sk-sim
general_settings:
  master_key: {API_KEY}
""")
        port = free_port()
        argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1",
                "--port", str(port), "--num_workers", "1"]
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MASTER_KEY": API_KEY}
        proc = procs.start(self.name, argv, PROXY_CPU, env=env, cwd=workdir)
        startup = proc.wait_ready(lambda: _chat_ok(port), self.startup_timeout, interval=0.02)
        return Running(f"http://127.0.0.1:{port}{CHAT_PATH}", proc, startup)


TARGETS: dict[str, Target] = {t.name: t for t in (
    Direct(), Stellwerk(), StellwerkPure(), StellwerkLedger(), StellwerkKeys(), StellwerkLimits(), StellwerkRedis(),
    StellwerkBefore(), StellwerkBeforeLedger(), StellwerkBeforeKeys(), StellwerkWorkers(), Nginx(), LiteLLM())}
