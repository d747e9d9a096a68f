"""Per-variant counters of an A/B test or canary, for ``GET /admin/experiments``.

The router records every attempt's outcome against the variant of the
deployment that served it (``ABStrategy.variant_of``)::

    stats.record("canary", latency=0.42, error=False, cost=0.00012)
    stats.snapshot()
    # {"canary": {"requests": 1, "errors": 0, "error_rate": 0.0, "latency_mean": 0.42,
    #             "latency_max": 0.42, "cost_total": 0.00012, "cost_mean": 0.00012}}

Latency is averaged over successful answers only. Not thread-safe (one event loop).
"""

from __future__ import annotations

__all__ = ["ExperimentStats"]


class _Tally:
    __slots__ = ("cost", "errors", "latency_max", "latency_sum", "requests", "successes")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.successes = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.cost = 0.0


class ExperimentStats:
    """Requests, errors, latency and cost per variant name."""

    __slots__ = ("_tallies",)

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}

    def record(self, variant: str, latency: float | None, error: bool, cost: float = 0.0) -> None:
        """One attempt served by ``variant``: its latency in seconds (None if unknown), whether it failed, its cost."""
        t = self._tallies.get(variant)
        if t is None:
            t = self._tallies[variant] = _Tally()
        t.requests += 1
        t.cost += cost
        if error:
            t.errors += 1
        elif latency is not None:
            t.successes += 1
            t.latency_sum += latency
            t.latency_max = max(t.latency_max, latency)

    def snapshot(self) -> dict[str, dict[str, float | int | None]]:
        """Plain numbers per variant (JSON-ready)."""
        return {
            name: {
                "requests": t.requests,
                "errors": t.errors,
                "error_rate": t.errors / t.requests if t.requests else 0.0,
                "latency_mean": t.latency_sum / t.successes if t.successes else None,
                "latency_max": t.latency_max if t.successes else None,
                "cost_total": t.cost,
                "cost_mean": t.cost / t.requests if t.requests else 0.0,
            }
            for name, t in self._tallies.items()
        }

    def reset(self) -> None:
        self._tallies.clear()
