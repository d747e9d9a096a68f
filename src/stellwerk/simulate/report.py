"""The report of one simulation, as one JSON-ready dict (``stellwerk simulate --json`` prints it).

    config, scenario       the files simulated
    seed, duration         the run's seed and virtual seconds of traffic
    requests               requests sent
    availability           share answered (status 200), 0..1
    errors                 failed requests by the status the client got ({"503": 12})
    upstream_errors        failed upstream attempts by class: 5xx, 429, 4xx, timeout, cut, connect, protocol
    attempts_per_request   upstream attempts (hedges included) per request, on average
    latency, ttft          p50, p90, p99 in seconds, of answered requests (ttft: answered streams; null if none)
    cost                   total and per_1k (per 1,000 requests), US dollars
    deployments            per id: requests answered, share of the answered, over_time (share per bucket)
    bucket_seconds         the width of an over_time bucket
    limit_violations       per deployment with an rpm: requests above the provider's limit (answered 429)
    outages                per outage window: detected_after (to the breaker opening), recovered_after (to the
                           first answer after it), failed requests that arrived in it; null when it did not happen
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from .recorder import Recorder
from .scenario import Scenario

__all__ = ["build_report", "quantiles"]

_BUCKETS = 20
"""Buckets of ``over_time`` per simulation."""


def quantiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p90 and p99 (nearest rank) of ``values``, in seconds to the microsecond; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    return {name: round(ordered[min(n - 1, int(q * n))], 6) for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


def build_report(recorder: Recorder, scenario: Scenario, deployments: Sequence[str], *, config: str, seed: int,
                 limit_violations: Mapping[str, int]) -> dict[str, Any]:
    """``deployments``: the config's, in order; ``limit_violations``: per deployment with a provider rpm."""
    finished = recorder.requests
    n = len(finished)
    ok = [r for r in finished if r.status == 200]
    total_cost = sum(r.cost for r in finished)
    bucket = scenario.duration / _BUCKETS
    return {
        "config": config,
        "scenario": scenario.source,
        "seed": seed,
        "duration": scenario.duration,
        "requests": n,
        "availability": round(len(ok) / n, 6) if n else None,
        "errors": dict(sorted(Counter(str(r.status) for r in finished if r.status != 200).items())),
        "upstream_errors": dict(sorted(Counter(c for r in finished for c in r.failed).items())),
        "attempts_per_request": round(sum(r.attempts for r in finished) / n, 4) if n else None,
        "latency": quantiles([r.latency for r in ok]),
        "ttft": quantiles([r.ttft for r in ok if r.ttft is not None]),
        "cost": {"total": round(total_cost, 6), "per_1k": round(total_cost / n * 1000, 6) if n else None},
        "deployments": _deployments(recorder, deployments, bucket),
        "bucket_seconds": bucket,
        "limit_violations": dict(limit_violations),
        "outages": _outages(recorder, scenario),
    }


def _deployments(recorder: Recorder, deployments: Sequence[str], bucket: float) -> dict[str, Any]:
    ok = [(r.start, r.deployment) for r in recorder.requests if r.status == 200 and r.deployment is not None]
    counts = Counter(d for _, d in ok)
    per_bucket: list[Counter[str]] = [Counter() for _ in range(_BUCKETS)]
    for start, d in ok:
        per_bucket[min(_BUCKETS - 1, int(start / bucket))][d] += 1
    ids = list(deployments) + sorted(set(counts) - set(deployments))  # "cache" answers too, when a model caches
    return {d: {"requests": counts[d], "share": round(counts[d] / len(ok), 6) if ok else 0.0,
                "over_time": [round(b[d] / total, 4) if (total := sum(b.values())) else 0.0 for b in per_bucket]}
            for d in ids}


def _outages(recorder: Recorder, scenario: Scenario) -> list[dict[str, Any]]:
    starts = [r.start for r in recorder.requests]  # in order of finishing: sort once for the windows
    order = sorted(range(len(starts)), key=starts.__getitem__)
    by_start = [recorder.requests[i] for i in order]
    keys = [r.start for r in by_start]
    out = []
    for dep, behaviour in scenario.deployments.items():
        for w in behaviour.outages:
            opened = next((t for t, d, new in recorder.breakers if d == dep and new == "open" and w.start <= t < w.end),
                          None)
            after = by_start[bisect.bisect_left(keys, w.end):]
            back = next((r.start for r in after if r.deployment == dep and r.status == 200), None)
            inside = by_start[bisect.bisect_left(keys, w.start):bisect.bisect_left(keys, w.end)]
            out.append({
                "deployment": dep, "start": w.start, "end": w.end,
                "detected_after": None if opened is None else round(opened - w.start, 3),
                "recovered_after": None if back is None else round(back - w.end, 3),
                "failed_requests": sum(1 for r in inside if r.status != 200),
            })
    return out
