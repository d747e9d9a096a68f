"""``stellwerk serve --workers N``: a supervisor and N gateway processes on one port (SO_REUSEPORT).

    supervisor ─► (no server.redis) a private redis-server on a unix socket in a temporary folder
               ─► N times ``stellwerk serve --config F --port P`` with STELLWERK_WORKER_REDIS set (the kernel
                  spreads connections over the N listening sockets)
               ─► a worker that dies is started again (at most once a second); SIGTERM/SIGINT/SIGHUP are
                  passed on; at exit the workers stop first, then the private Redis

Limits stay exact across workers because every worker is a replica of one cluster: through
``server.redis`` when it is configured, and otherwise through the supervisor's private redis-server
(the shared local mechanism: nothing is persisted, nothing listens on TCP, the socket is mode 0700).
Without a ``redis-server`` binary and without ``server.redis``, more than one worker is refused.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from stellwerk.config import Config
from stellwerk.errors import ConfigError

__all__ = ["WORKER_REDIS", "run_workers", "worker_count"]

WORKER_REDIS = "STELLWERK_WORKER_REDIS"
"""The environment variable naming the supervisor's private Redis to its workers."""
READY_TIMEOUT = 10.0


def worker_count(value: str) -> int:
    """``N`` (1 to 256) or ``auto`` (the number of cores)."""
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or not 1 <= int(value) <= 256:
        raise ConfigError([f"--workers: expected a number from 1 to 256 or 'auto', got '{value}'"])
    return int(value)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


def _private_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(["--workers: more than one worker needs server.redis, or a redis-server binary on the "
                           "PATH for the workers' shared limits (none found)"])
    sock = folder / "redis.sock"
    proc = subprocess.Popen([binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + READY_TIMEOUT
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise ConfigError(["--workers: the private redis-server did not start"])
        time.sleep(0.02)
    return proc, f"unix://{sock}"


def run_workers(config: Config, source: str, workers: int, host: str | None, port: int | None,
                extra: Sequence[str] = ()) -> int:
    """Supervise ``workers`` processes serving ``source`` on one port until SIGTERM/SIGINT; the exit code."""
    host = host if host is not None else config.server.host
    port = port if port is not None else config.server.port
    if port == 0:
        port = _free_port(host)
    with tempfile.TemporaryDirectory(prefix="stellwerk-workers-") as folder:
        redis: subprocess.Popen[bytes] | None = None
        env = dict(os.environ)
        if config.server.redis is None:
            redis, env[WORKER_REDIS] = _private_redis(Path(folder))
        command = [sys.executable, "-m", "stellwerk.cli", "serve", "--config", source, "--host", host, "--port",
                   str(port), "--reuse-port", *extra]
        stopping = False

        def forward(signum: int, frame: object) -> None:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signum)

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True
            forward(signum, frame)

        procs = [subprocess.Popen(command, env=env) for _ in range(workers)]
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, stop)
        signal.signal(signal.SIGHUP, forward)
        print(f"stellwerk supervisor: {workers} workers on http://{host}:{port} (shared state: "
              f"{'server.redis' if redis is None else 'a private redis-server on a unix socket'})", flush=True)
        started = [time.monotonic()] * workers
        try:
            while not stopping:
                time.sleep(0.2)
                for i, proc in enumerate(procs):
                    if proc.poll() is not None and not stopping and time.monotonic() - started[i] >= 1.0:
                        print(f"stellwerk supervisor: worker {proc.pid} exited ({proc.returncode}); starting "
                              "another", file=sys.stderr, flush=True)
                        procs[i], started[i] = subprocess.Popen(command, env=env), time.monotonic()
            for proc in procs:
                proc.wait()
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if redis is not None:
                redis.terminate()
                redis.wait()
    return 0
