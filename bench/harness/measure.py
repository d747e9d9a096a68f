"""Measure one target: start-up, answer check, saturation + CPU per request, fixed-rate latency, peak RSS.

The sequence for a target, both modes (``json`` = non-streaming, ``stream`` =
SSE), all against one shared upstream:

1. start the target pinned to the proxy CPU; start-up = spawn → ready;
2. check one answer per mode (a proxy that answers 200 with garbage is an error);
3. per mode: ``wrk`` warm-up, then the measured ``wrk`` run with the proxy's and
   the upstream's CPU time read before and after it;
4. per mode and rate: ``h2load`` at a fixed rate, latency percentiles;
5. peak RSS (VmHWM) after all that load; stop the target.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import load, probe
from .procs import Proc, Procs, StartError
from .targets import Running, Target

MODES = {"json": False, "stream": True}


@dataclass(frozen=True)
class Plan:
    """How long and how hard to load one target."""

    duration: int = 10  # seconds of measured wrk per mode
    warmup: int = 2  # seconds of wrk before it, not measured
    rates: tuple[float, ...] = (200.0,)  # fixed rates for latency, req/s
    latency_seconds: float = 10.0
    latency_warmup: float = 1.0
    # For a slow target: cap each rate at this fraction of the measured saturation req/s, so the latency
    # run shows the proxy's latency rather than its queue.
    capacity_fraction: float | None = None
    # Explicit rates per mode (the direct baseline is measured at every rate any target used).
    mode_rates: dict[str, tuple[float, ...]] | None = None

    def rates_for(self, mode: str, saturation_rps: float) -> tuple[float, ...]:
        if self.mode_rates is not None:
            return self.mode_rates.get(mode, self.rates)
        if self.capacity_fraction is None:
            return self.rates
        cap = max(1.0, math.floor(self.capacity_fraction * saturation_rps))
        return tuple(dict.fromkeys(min(rate, cap) for rate in self.rates))


@dataclass
class ModeResult:
    answer: str = ""
    saturation: load.Saturation | None = None
    cpu_us: float | None = None  # proxy CPU µs per request during the saturation run
    cpu_us_range: tuple[float, float] | None = None  # lowest and highest cpu_us over the rounds (combined only)
    upstream_cpu_us: float | None = None
    latency: dict[float, load.FixedRate] = field(default_factory=dict)
    error: str | None = None


@dataclass
class TargetResult:
    name: str
    plan: Plan
    startup_s: float | None = None
    rss_mb: float | None = None
    modes: dict[str, ModeResult] = field(default_factory=dict)
    error: str | None = None  # set when the target could not be measured at all


def _log(msg: str) -> None:
    print(f"  {msg}", flush=True)


def _per_request_us(before: float, after: float, requests: int) -> float | None:
    return (after - before) / requests * 1e6 if requests else None


def _saturate(url: str, stream: bool, plan: Plan, proc: Proc | None, upstream: Proc, workdir: Path,
              res: ModeResult) -> None:
    load.saturate(url, stream, plan.warmup, workdir)
    cpu0 = proc.cpu_seconds() if proc else 0.0
    up0 = upstream.cpu_seconds()
    sat = load.saturate(url, stream, plan.duration, workdir)
    cpu1 = proc.cpu_seconds() if proc else 0.0
    up1 = upstream.cpu_seconds()
    res.saturation = sat
    res.cpu_us = _per_request_us(cpu0, cpu1, sat.requests) if proc else None
    res.upstream_cpu_us = _per_request_us(up0, up1, sat.requests)
    cpu = f"{res.cpu_us:.0f} µs CPU/req, " if res.cpu_us is not None else ""
    _log(f"{'stream' if stream else 'json':6} wrk: {sat.rps:,.0f} req/s, {cpu}"
         f"upstream {res.upstream_cpu_us or 0:.0f} µs/req, errors {sat.errors or 0}")


def _measure_mode(running: Running, stream: bool, plan: Plan, upstream: Proc, workdir: Path) -> ModeResult:
    mode = "stream" if stream else "json"
    res = ModeResult()
    url = urlsplit(running.url)
    status, body = probe.request(url.port or 80, "POST", url.path, load.chat_body(stream), load.request_headers(),
                                 timeout=30)
    try:
        res.answer = probe.check_answer(status, body, stream)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        res.error = f"bad answer: {exc}"
        _log(f"{mode:6} {res.error}")
        return res
    _log(f"{mode:6} answer: {res.answer}")
    try:
        _saturate(running.url, stream, plan, running.proc, upstream, workdir, res)
        for rate in plan.rates_for(mode, res.saturation.rps if res.saturation else 0.0):
            lat = res.latency[rate] = load.fixed_rate(running.url, stream, rate, plan.latency_seconds,
                                                      plan.latency_warmup, workdir)
            _log(f"{mode:6} @{rate:g}/s: p50 {lat.p50_us / 1000:.3f} ms, p99 {lat.p99_us / 1000:.3f} ms, "
                 f"{lat.samples} ok, {lat.errors} errors")
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        res.error = str(exc)
        _log(f"{mode:6} failed: {exc}")
    return res


def measure(target: Target, plan: Plan, procs: Procs, upstream: Proc, upstream_url: str,
            workdir: Path) -> TargetResult:
    """Run the whole sequence for ``target`` (one of ``targets.TARGETS``); never raises for target failures."""
    result = TargetResult(target.name, plan)
    reason = target.unavailable()
    if reason:
        result.error = reason
        return result
    tdir = workdir / target.name
    tdir.mkdir(parents=True, exist_ok=True)
    try:
        running = target.start(procs, upstream_url, tdir)
    except StartError as exc:
        result.error = f"did not start: {exc}"
        return result
    result.startup_s = running.startup_s
    if running.startup_s is not None:
        _log(f"ready after {running.startup_s * 1000:.0f} ms")
    try:
        for mode, stream in MODES.items():
            result.modes[mode] = _measure_mode(running, stream, plan, upstream, tdir)
            if not upstream.alive():
                result.error = f"the upstream died: {upstream.log_tail()}"
                return result
        if running.proc is not None:
            result.rss_mb = running.proc.peak_rss_mb()
            if not running.proc.alive():
                result.error = f"exited during the run: {running.proc.log_tail()}"
    finally:
        if running.proc is not None:
            procs.stop(running.proc)
    return result
