"""The stats collector: a listener that aggregates finished requests per deployment (``/admin/stats``, the demo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .events import RequestFinished

__all__ = ["DeploymentStats", "StatsCollector"]


@dataclass(slots=True)
class DeploymentStats:
    requests: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ewma: float | None = None
    last_error: str | None = None
    by_outcome: dict[str, int] = field(default_factory=dict)


class StatsCollector:
    """Aggregates finished requests per deployment (for ``/admin/stats`` and the demo).

    ``events.subscribe_batches(stats.take)`` (or, one event at a time, ``events.subscribe(stats, RequestFinished)``).
    """

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.deployments: dict[str, DeploymentStats] = {}
        self.requests = 0
        self.errors = 0
        self.failovers = 0
        self.cost = 0.0
        self.cache_hits = 0
        self.saved_cost = 0.0

    def __call__(self, record: object) -> None:
        """One event (a plain listener); the gateway hands the records over in batches (:meth:`take`)."""
        if isinstance(record, RequestFinished):
            self.take((record,))

    def take(self, records: Sequence[RequestFinished]) -> None:
        """A batch of finished requests (``events.subscribe_batches(stats.take)``)."""
        deployments = self.deployments
        alpha = self.alpha
        for record in records:
            self.requests += 1
            if record.cache:  # answered by the response cache: no deployment was asked
                self.cache_hits += 1
                self.saved_cost += record.saved
                continue
            answered = record.deployment
            if record.attempts:
                if answered is not None and any(a.deployment != answered for a in record.attempts):
                    self.failovers += 1  # answered by another deployment than one that failed (retries don't count)
                for attempt in record.attempts:
                    stats = deployments.get(attempt.deployment)
                    if stats is None:
                        stats = deployments[attempt.deployment] = DeploymentStats()
                    stats.failures += 1
                    stats.last_error = attempt.describe()
                    stats.by_outcome[attempt.outcome.value] = stats.by_outcome.get(attempt.outcome.value, 0) + 1
            if answered is None:
                self.errors += 1
                continue
            stats = deployments.get(answered)
            if stats is None:
                stats = deployments[answered] = DeploymentStats()
            stats.requests += 1
            usage = record.usage
            stats.prompt_tokens += usage.prompt_tokens
            stats.completion_tokens += usage.completion_tokens
            stats.cost += record.cost
            self.cost += record.cost
            ewma = stats.latency_ewma
            stats.latency_ewma = record.latency if ewma is None else ewma + alpha * (record.latency - ewma)

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "failovers": self.failovers,
            "cost_usd": round(self.cost, 8),
            "cache_hits": self.cache_hits,
            "saved_cost_usd": round(self.saved_cost, 8),
            "deployments": {
                name: {
                    "requests": s.requests,
                    "failures": s.failures,
                    "prompt_tokens": s.prompt_tokens,
                    "completion_tokens": s.completion_tokens,
                    "cost_usd": round(s.cost, 8),
                    "latency_ewma_ms": None if s.latency_ewma is None else round(s.latency_ewma * 1000, 3),
                    "failures_by_outcome": dict(s.by_outcome),
                    "last_error": s.last_error,
                }
                for name, s in self.deployments.items()
            },
        }
