"""Telemetry as events: the router emits one small frozen record per finished request.

Logs, metrics and dashboards are listeners on these records; the router knows
none of them. A listener must be fast and must not raise (errors are logged
and swallowed so that telemetry can never fail a request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from stellwerk.errors import Attempt
from stellwerk.usage import Usage

__all__ = ["DeploymentStats", "Listener", "RequestRecord", "StatsCollector", "emit"]

log = logging.getLogger("stellwerk.events")


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    operation: str
    """``chat`` or ``embeddings``."""
    model: str
    deployment: str | None
    """The deployment that answered, or None when none did."""
    status: int
    attempts: tuple[Attempt, ...]
    """The attempts that failed before the answer (or all of them when none answered)."""
    latency: float
    """Seconds from the request reaching the router to the last byte of the answer."""
    ttft: float | None
    """Seconds to the first streamed chunk (streams only)."""
    stream: bool
    usage: Usage
    cost: float
    """US dollars, from the answering deployment's price."""

    @property
    def upstream_attempts(self) -> int:
        return len(self.attempts) + (1 if self.deployment else 0)


Listener = Callable[[RequestRecord], None]


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
    """Aggregates records per model and deployment (for ``/admin/stats`` and the demo)."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.deployments: dict[str, DeploymentStats] = {}
        self.requests = 0
        self.errors = 0
        self.failovers = 0
        self.cost = 0.0

    def __call__(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.deployment is None:
            self.errors += 1
        if record.deployment is not None and any(a.deployment != record.deployment for a in record.attempts):
            self.failovers += 1  # answered by another deployment than one that failed (retries don't count)
        for attempt in record.attempts:
            stats = self.deployments.setdefault(attempt.deployment, DeploymentStats())
            stats.failures += 1
            stats.last_error = attempt.describe()
            stats.by_outcome[attempt.outcome.value] = stats.by_outcome.get(attempt.outcome.value, 0) + 1
        if record.deployment is not None:
            stats = self.deployments.setdefault(record.deployment, DeploymentStats())
            stats.requests += 1
            stats.prompt_tokens += record.usage.prompt_tokens
            stats.completion_tokens += record.usage.completion_tokens
            stats.cost += record.cost
            self.cost += record.cost
            ewma = stats.latency_ewma
            stats.latency_ewma = record.latency if ewma is None else ewma + self.alpha * (record.latency - ewma)

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "failovers": self.failovers,
            "cost_usd": round(self.cost, 8),
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


def emit(listeners: tuple[Listener, ...], record: RequestRecord) -> None:
    for listener in listeners:
        try:
            listener(record)
        except Exception:
            log.exception("telemetry listener %r failed", listener)
