"""Combine several rounds of the same target into one result.

With ``--rounds N`` every round measures all targets in turn, so a burst of
background load on this shared machine spoils one round of one target rather
than one target entirely. Per-request CPU (with its lowest and highest round: the spread), latency percentiles, start-up and RSS
are the median over rounds; req/s is total requests over total measured time;
errors are summed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from .load import FixedRate, Saturation
from .measure import ModeResult, TargetResult

T = TypeVar("T")


def _median(items: Sequence[T], get: Callable[[T], float | None]) -> float | None:
    values = [v for v in map(get, items) if v is not None]
    return statistics.median(values) if values else None


def _saturation(sats: list[Saturation]) -> Saturation | None:
    if not sats:
        return None
    errors: dict[str, int] = {}
    for sat in sats:
        for kind, n in sat.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    return Saturation(sum(s.requests for s in sats), sum(s.seconds for s in sats), errors,
                      statistics.median(s.p50_us for s in sats), statistics.median(s.p99_us for s in sats))


def _fixed_rate(lats: list[FixedRate]) -> FixedRate:
    return replace(
        lats[0],
        achieved_rate=statistics.median(lat.achieved_rate for lat in lats),
        samples=sum(lat.samples for lat in lats),
        errors=sum(lat.errors for lat in lats),
        p50_us=statistics.median(lat.p50_us for lat in lats),
        p90_us=statistics.median(lat.p90_us for lat in lats),
        p99_us=statistics.median(lat.p99_us for lat in lats),
    )


def _range(values: Sequence[float | None]) -> tuple[float, float] | None:
    known = [v for v in values if v is not None]
    return (min(known), max(known)) if len(known) > 1 else None


def _mode(results: list[ModeResult]) -> ModeResult:
    rates = dict.fromkeys(rate for r in results for rate in r.latency)
    return ModeResult(
        answer=results[0].answer,
        saturation=_saturation([r.saturation for r in results if r.saturation]),
        cpu_us=_median(results, lambda r: r.cpu_us),
        cpu_us_range=_range([r.cpu_us for r in results]),
        upstream_cpu_us=_median(results, lambda r: r.upstream_cpu_us),
        latency={rate: _fixed_rate([r.latency[rate] for r in results if rate in r.latency]) for rate in rates},
        error="; ".join(dict.fromkeys(r.error for r in results if r.error)) or None,
    )


def combine(rounds: list[TargetResult]) -> TargetResult:
    """One result from the rounds of one target (rounds that failed as a whole are dropped if any succeeded)."""
    ok = [r for r in rounds if not r.error] or rounds[:1]
    if len(ok) == 1:
        return ok[0]
    modes = dict.fromkeys(m for r in ok for m in r.modes)
    return TargetResult(
        name=ok[0].name,
        plan=ok[0].plan,
        startup_s=_median(ok, lambda r: r.startup_s),
        rss_mb=_median(ok, lambda r: r.rss_mb),
        modes={m: _mode([r.modes[m] for r in ok if m in r.modes]) for m in modes},
        error=None,
    )
