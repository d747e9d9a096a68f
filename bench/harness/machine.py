"""Describe the machine and the versions of everything measured, for the results header."""

from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .targets import LITELLM_VENV


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _dist_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _litellm_version() -> str:
    found = sorted(LITELLM_VENV.glob("lib/python*/site-packages/litellm-*.dist-info"))
    return found[-1].name.removeprefix("litellm-").removesuffix(".dist-info") if found else "not installed"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _mem_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def describe() -> dict[str, str]:
    nginx = _first_line(["nginx", "-v"]).removeprefix("nginx version: ")
    wrk = re.sub(r"\s*Copyright.*", "", _first_line(["wrk", "-v"]))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {_mem_gib():.0f} GiB, "
                   f"Linux {platform.release()}",
        "python": platform.python_version(),
        "stellwerk": _dist_version("stellwerk"),
        "uvloop / httptools": f"{_dist_version('uvloop')} / {_dist_version('httptools')}",
        "nginx": nginx,
        "litellm": _litellm_version(),
        "wrk": wrk,
        "h2load": _first_line(["h2load", "--version"]),
    }


def _busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (user nice system irq softirq steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process plus every child (and their descendants) already waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class BackgroundMeter:
    """How busy the machine was with *other* work during the run (this is a shared, noisy machine).

    Read :meth:`cores` only after every benchmark process has been stopped and reaped.
    """

    def __init__(self) -> None:
        self._busy, self._own, self._wall = _busy_seconds(), _own_seconds(), time.monotonic()

    def cores(self) -> float:
        other = (_busy_seconds() - self._busy) - (_own_seconds() - self._own)
        return max(0.0, other) / max(1e-9, time.monotonic() - self._wall)
