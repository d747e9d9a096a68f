"""Pinned child processes: spawn, wait until ready, read CPU time and peak RSS, stop.

CPU time and memory come from ``/proc`` and cover the whole process tree
(nginx's master and worker, any helper a proxy forks): ``utime + stime`` of each
live process plus ``cutime + cstime`` (children it already reaped). Every
process is started in its own session so that :meth:`Proc.stop` can signal the
whole group, and :class:`Procs` stops everything it started on exit, error or
Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
LOAD_CPU = "0"  # load generator and upstream
PROXY_CPU = "1"  # the proxy under test
PROXY_CPUS = "0,1"  # a multi-worker proxy (it shares CPU 0 with the load; its req/s is the figure, not CPU/req)


class StartError(RuntimeError):
    """A process died or did not become ready in time; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may contain spaces


def _tree(root: int) -> list[int]:
    """``root`` and all its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(parents.get(pid, []))
    return out


class Proc:
    """One spawned process (and its descendants)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        self.spawned_at = time.perf_counter()
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process tree so far."""
        ticks = 0
        for pid in _tree(self.pid):
            try:
                f = _stat_fields(pid)
            except OSError:
                continue
            ticks += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
        return ticks / CLK_TCK

    def peak_rss_mb(self) -> float:
        """Sum of VmHWM (peak resident set) over the process tree, in MiB."""
        kib = 0
        for pid in _tree(self.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kib += int(line.split()[1])
            except OSError:
                continue
        return kib / 1024

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float, interval: float = 0.005) -> float:
        """Poll ``probe`` until it returns True; return seconds since spawn."""
        deadline = self.spawned_at + timeout
        while time.perf_counter() < deadline:
            if not self.alive():
                raise StartError(f"{self.name} exited with {self.popen.returncode}: {self.log_tail()}")
            if probe():
                return time.perf_counter() - self.spawned_at
            time.sleep(interval)
        raise StartError(f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}")

    def stop(self, grace: float = 5.0) -> None:
        if self.alive():
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()


class Procs:
    """Starts processes pinned to a CPU and stops all of them on exit."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[Proc] = []

    def start(self, name: str, argv: list[str], cpu: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        proc = Proc(name, ["taskset", "-c", cpu, *argv], self.log_dir / f"{name}.log", env, cwd)
        self._procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        while self._procs:
            self._procs.pop().stop()

    def __enter__(self) -> Procs:
        signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
