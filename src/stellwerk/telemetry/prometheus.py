"""Prometheus metrics: a listener on finished requests, and gauges read from the routing table at scrape time.

    RequestFinished ─► Metrics (listener) ─► counters and histograms (prometheus_client children, cached)
    GET /metrics    ─► Metrics.render(accept) ─► the registry's text, plus gauges read from ``router.table``

Nothing here sits in the attempt loop: upstream attempts are counted from the
finished request's record (its failed attempts, plus the one that answered).
Label values come from the configuration (models, deployments) and from small
closed sets (HTTP status, outcome classes, token kind), so cardinality is
bounded: a model name the current table does not know is counted as ``other``.

The per-request cost is one dictionary look-up for the label set's children and
a handful of locked additions (``bench/instructions.py`` measures it).
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .events import Event, RequestFinished

if TYPE_CHECKING:
    from stellwerk.routing.table import RoutingTable

__all__ = ["DURATION_BUCKETS", "TTFT_BUCKETS", "Metrics"]

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, float("inf"))
"""Seconds, for whole requests (LLM answers take seconds, not milliseconds)."""
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, float("inf"))
"""Seconds to the first streamed token."""
_BREAKER_STATES = ("closed", "open", "half_open")
_CACHE_RESULTS = ("hit", "miss")
_RATELIMIT_SCOPES = ("key", "team", "deployment")
_OTHER = "other"
_Child = Counter
_MAX_LABEL_SETS = 10_000
"""Cached label sets at most (bounded even if statuses or outcomes were to grow)."""


class _Children:
    """The metric children of one ``(model, deployment, status)`` label set (built once, reused)."""

    __slots__ = ("answered", "duration", "model", "requests", "ttft")

    def __init__(self, metrics: Metrics, model: str, deployment: str | None, status: str) -> None:
        self.model = model
        self.requests = metrics.requests.labels(model, deployment or "", status)
        self.duration = metrics.duration.labels(model)
        self.ttft = metrics.ttft.labels(model)
        self.answered: tuple[_Child, _Child, _Child, _Child] | None = None if deployment is None else (
            metrics.tokens.labels(model, deployment, "prompt"), metrics.tokens.labels(model, deployment, "completion"),
            metrics.cost.labels(model, deployment), metrics.attempts.labels(model, deployment, "ok"))
        """prompt tokens, completion tokens, cost and ``ok`` attempts: for answered requests only."""


class Metrics:
    """The gateway's Prometheus metrics. Subscribe it to :class:`RequestFinished`; serve :meth:`render`.

    >>> metrics = Metrics(lambda: router.table, version="0.1.0")
    >>> router.events.subscribe(metrics, RequestFinished)
    >>> body, content_type = metrics.render(request.headers.get("accept", ""))

    Each instance has its own registry (no process-global state): two gateways in
    one process export separate figures.
    """

    def __init__(self, table: Callable[[], RoutingTable], *, version: str = "unknown") -> None:
        self._table = table
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("stellwerk_requests", "Requests finished, by model, answering deployment and HTTP status",
                                ("model", "deployment", "status"), registry=registry)
        self.duration = Histogram("stellwerk_request_duration_seconds", "Seconds from a request's arrival to its last byte",
                                  ("model",), buckets=DURATION_BUCKETS, registry=registry)
        self.ttft = Histogram("stellwerk_time_to_first_token_seconds", "Seconds to a stream's first chunk",
                              ("model",), buckets=TTFT_BUCKETS, registry=registry)
        self.attempts = Counter("stellwerk_upstream_attempts", "Upstream attempts, by outcome (ok or the failure's class)",
                                ("model", "deployment", "outcome"), registry=registry)
        self.tokens = Counter("stellwerk_tokens", "Tokens used, by kind (prompt or completion)",
                              ("model", "deployment", "kind"), registry=registry)
        self.cost = Counter("stellwerk_cost_usd", "US dollars spent, from the deployments' prices",
                            ("model", "deployment"), registry=registry)
        self.cache = Counter("stellwerk_cache_requests", "Cache look-ups by result (hit or miss)",
                             ("model", "result"), registry=registry)
        self.ratelimit = Counter("stellwerk_ratelimit_rejections", "Requests refused by a rate limit, by scope",
                                 ("scope",), registry=registry)
        for scope in _RATELIMIT_SCOPES:
            self.ratelimit.labels(scope)
        for model in table().models:
            for result in _CACHE_RESULTS:
                self.cache.labels(model, result)
        Info("stellwerk_build", "The gateway's version", registry=registry).info(
            {"version": version, "python": platform.python_version()})
        registry.register(_TableGauges(table))
        self._children: dict[tuple[str, str | None, int], _Children] = {}

    def __call__(self, record: Event) -> None:
        if type(record) is not RequestFinished:
            return
        key = (record.model, record.deployment, record.status)
        children = self._children.get(key)
        if children is None:
            children = self._new_children(key)
        children.requests.inc()
        children.duration.observe(record.latency)
        if record.ttft is not None:
            children.ttft.observe(record.ttft)
        answered = children.answered
        if answered is not None:
            prompt, completion, cost, ok = answered
            usage = record.usage
            if usage.prompt_tokens:
                prompt.inc(usage.prompt_tokens)
            if usage.completion_tokens:
                completion.inc(usage.completion_tokens)
            if record.cost:
                cost.inc(record.cost)
            ok.inc()
        if record.attempts:
            model = children.model
            for attempt in record.attempts:
                self.attempts.labels(model, self._deployment(attempt.deployment), attempt.outcome.value).inc()

    def _new_children(self, key: tuple[str, str | None, int]) -> _Children:
        model, deployment, status = key
        table = self._table()
        label = model if model in table.models else _OTHER
        dep = self._deployment(deployment) if deployment is not None else None
        children = _Children(self, label, dep, str(status))
        if len(self._children) < _MAX_LABEL_SETS:
            self._children[key] = children
        return children

    def _deployment(self, deployment: str) -> str:
        return deployment if deployment in self._table().deployments else _OTHER

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (OpenMetrics when ``accept`` asks for it, else Prometheus text) and its content type."""
        encoder, content_type = choose_encoder(accept)
        if not content_type.startswith("application/openmetrics-text"):
            content_type = "text/plain; version=0.0.4; charset=utf-8"
        return encoder(self.registry), content_type


class _TableGauges(Collector):
    """Gauges read from the current routing table when scraped: health, breakers, in-flight, config version."""

    def __init__(self, table: Callable[[], RoutingTable]) -> None:
        self._table = table

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        table = self._table()
        up = GaugeMetricFamily("stellwerk_deployment_up", "1 when the deployment's breaker lets traffic through",
                               labels=("deployment",))
        breaker = GaugeMetricFamily("stellwerk_breaker_state", "1 for the breaker's current state",
                                    labels=("deployment", "state"))
        in_flight = GaugeMetricFamily("stellwerk_in_flight", "Requests in flight to the deployment",
                                      labels=("deployment",))
        for dep_id, dep in table.deployments.items():
            up.add_metric((dep_id,), 1.0 if dep.breaker.available() else 0.0)
            current = dep.breaker.state.value
            for state in _BREAKER_STATES:
                breaker.add_metric((dep_id, state), 1.0 if state == current else 0.0)
            in_flight.add_metric((dep_id,), float(dep.in_flight))
        version = GaugeMetricFamily("stellwerk_config_version", "Version of the routing table in use", value=table.version)
        return [up, breaker, in_flight, version]
