"""Processes of the cluster benchmarks: a fast simulated upstream and a gateway on a config file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from harness.procs import free_port
from instructions import SERVE, _wait, fast_sim

__all__ = ["fast_sim", "gateway", "port_of"]


@contextmanager
def gateway(config: Path, *args: str, src: str = "") -> Iterator[subprocess.Popen[bytes]]:
    """``stellwerk serve --config config *args`` on a free port, answering /healthz; yields the process
    (:func:`port_of` tells its port). ``src``: another checkout's ``src`` folder to run instead of this one."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": src} if src else None
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--config", str(config), "--port", str(port),
                             *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait(port, "/healthz", 60)
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def port_of(proc: subprocess.Popen[bytes]) -> int:
    args = list(proc.args)  # type: ignore[arg-type]
    return int(args[args.index("--port") + 1])
