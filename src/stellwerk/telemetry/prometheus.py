"""Prometheus metrics: a listener on finished requests, and gauges read from the routing table at scrape time.

    RequestFinished ─► Metrics (listener) ─► plain counters per (model, deployment, status) label set
    GET /metrics    ─► Metrics.render(accept) ─► prometheus_client's exposition (text or OpenMetrics) of
                       those counters, plus gauges read from ``router.table``

Nothing here sits in the attempt loop: upstream attempts are counted from the
finished request's record (its failed attempts, plus the one that answered).
Label values come from the configuration (models, deployments) and from small
closed sets (HTTP status, outcome classes, token kind), so cardinality is
bounded: a model or deployment the current table does not know is counted as
``other``.

Why the counting is not prometheus_client's ``Counter``/``Histogram``: each of
their increments takes a lock (measured: 0.59 µs per ``inc``, 1.24 µs per
``observe``, 6.2 µs per request for the seven updates a request makes, more than
half the 10 µs budget of all observability). Listeners and scrapes run on the
event loop's one thread, so plain integer additions are safe; prometheus_client
still does the exposition and the content negotiation, and the tests parse its
output with its parsers. ``bench/observability.py`` has the per-request cost.
"""

from __future__ import annotations

import bisect
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from .events import Event, RequestFinished

if TYPE_CHECKING:
    from stellwerk.routing.table import RoutingTable

__all__ = ["DURATION_BUCKETS", "TTFT_BUCKETS", "Metrics"]

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Upper bounds in seconds for whole requests (LLM answers take seconds, not milliseconds); +Inf is added."""
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Upper bounds in seconds to a stream's first chunk; +Inf is added."""
_BREAKER_STATES = ("closed", "open", "half_open")
_CACHE_RESULTS = ("hit", "semantic-hit", "miss", "bypass")
_RATELIMIT_SCOPES = ("key", "team", "deployment")
_OTHER = "other"
_MAX_LABEL_SETS = 10_000
"""Label sets counted separately at most (statuses and outcomes are small sets; this bounds them anyway)."""


class _Series:
    """The counts of one ``(model, deployment, status)`` label set."""

    __slots__ = ("completion", "cost", "duration", "duration_sum", "prompt", "requests", "ttft", "ttft_sum")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = [0] * (len(DURATION_BUCKETS) + 1)
        """Observations per bucket (not cumulative; the last is +Inf)."""
        self.duration_sum = 0.0
        self.ttft = [0] * (len(TTFT_BUCKETS) + 1)
        self.ttft_sum = 0.0
        self.prompt = 0
        self.completion = 0
        self.cost = 0.0


class Metrics(Collector):
    """The gateway's Prometheus metrics. Subscribe its :meth:`take` to finished-request batches; serve :meth:`render`.

    >>> metrics = Metrics(lambda: router.table, version="0.1.0")
    >>> router.events.subscribe_batches(metrics.take)
    >>> body, content_type = metrics.render(request.headers.get("accept", ""))

    Each instance has its own registry (no process-global state): two gateways in
    one process export separate figures.
    """

    def __init__(self, table: Callable[[], RoutingTable], *, version: str = "unknown",
                 cache_counts: Callable[[], Mapping[tuple[str, str], int]] | None = None,
                 per_key: bool = False) -> None:
        """``cache_counts``: the response cache's look-ups by (model, result), read at scrape time;
        ``per_key``: also count by gateway key (``server.metrics_per_key``)."""
        self._table = table
        self._cache_counts = cache_counts
        self._version = version
        self._series: dict[tuple[str, str | None, int], _Series] = {}
        self._attempts: dict[tuple[str, str, str], int] = {}
        """Failed upstream attempts by (model, deployment, outcome); ``ok`` ones are the answered requests."""
        self.saved: dict[str, float] = {}
        """US dollars the response cache saved, by model."""
        self.cache: dict[tuple[str, str], int] = {}
        """Cache look-ups by (model, result): zero until the response cache counts into it."""
        self.ratelimit: dict[str, int] = dict.fromkeys(_RATELIMIT_SCOPES, 0)
        """Rate-limit and budget rejections by scope (``key``, ``team``, ``deployment``)."""
        self._per_key = per_key
        self._keys: dict[tuple[str, str, int], list[float]] = {}
        """With ``per_key``: [requests, prompt tokens, completion tokens, dollars] by (key id, team, status)."""
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        self.registry.register(_TableGauges(table))

    def __call__(self, record: Event) -> None:
        """One event (a plain listener); the gateway hands the records over in batches (:meth:`take`)."""
        if type(record) is RequestFinished:
            self.take((record,))

    def take(self, records: Sequence[RequestFinished]) -> None:
        """A batch of finished requests (``events.subscribe_batches(metrics.take)``)."""
        all_series = self._series
        duration_bounds, ttft_bounds = DURATION_BUCKETS, TTFT_BUCKETS
        bucket = bisect.bisect_left
        for record in records:
            key = (record.model, record.deployment, record.status)
            series = all_series.get(key)
            if series is None:
                series = self._new_series(key)
            series.requests += 1
            latency = record.latency
            series.duration[bucket(duration_bounds, latency)] += 1
            series.duration_sum += latency
            ttft = record.ttft
            if ttft is not None:
                series.ttft[bucket(ttft_bounds, ttft)] += 1
                series.ttft_sum += ttft
            if record.deployment is not None:
                usage = record.usage
                series.prompt += usage.prompt_tokens
                series.completion += usage.completion_tokens
                series.cost += record.cost
                if record.saved:
                    model_name = self._model(record.model)
                    self.saved[model_name] = self.saved.get(model_name, 0.0) + record.saved
            elif record.limited:
                self.ratelimit[record.limited] = self.ratelimit.get(record.limited, 0) + 1
            if self._per_key and record.key_id is not None:
                self._count_key(record)
            if record.attempts:
                attempts = self._attempts
                model = self._model(record.model)
                for attempt in record.attempts:
                    failed = (model, self._deployment(attempt.deployment), attempt.outcome.value)
                    attempts[failed] = attempts.get(failed, 0) + 1

    def _count_key(self, record: RequestFinished) -> None:
        assert record.key_id is not None
        labels = (record.key_id, record.team or "", record.status)
        sums = self._keys.get(labels)
        if sums is None:
            if len(self._keys) >= _MAX_LABEL_SETS:
                labels = (_OTHER, "", record.status)
            sums = self._keys.setdefault(labels, [0, 0, 0, 0.0])
        sums[0] += 1
        if record.deployment is not None:
            sums[1] += record.usage.prompt_tokens
            sums[2] += record.usage.completion_tokens
            sums[3] += record.cost

    def _by_key(self) -> list[Metric]:
        requests = CounterMetricFamily("stellwerk_key_requests", "Requests finished, by gateway key, its team and "
                                       "HTTP status", labels=("key_id", "team", "status"))
        tokens = CounterMetricFamily("stellwerk_key_tokens", "Tokens used, by gateway key and kind",
                                     labels=("key_id", "kind"))
        cost = CounterMetricFamily("stellwerk_key_cost_usd", "US dollars spent, by gateway key", labels=("key_id",))
        spent: dict[str, list[float]] = {}
        for (key_id, team, status), (count, prompt, completion, dollars) in self._keys.items():
            requests.add_metric((key_id, team, str(status)), count)
            sums = spent.setdefault(key_id, [0, 0, 0.0])
            sums[0] += prompt
            sums[1] += completion
            sums[2] += dollars
        for key_id, (prompt, completion, dollars) in spent.items():
            tokens.add_metric((key_id, "prompt"), prompt)
            tokens.add_metric((key_id, "completion"), completion)
            cost.add_metric((key_id,), dollars)
        return [requests, tokens, cost]

    def _new_series(self, key: tuple[str, str | None, int]) -> _Series:
        series = _Series()
        if len(self._series) < _MAX_LABEL_SETS:
            self._series[key] = series
        return series

    def _model(self, model: str) -> str:
        return model if model in self._table().models else _OTHER

    def _deployment(self, deployment: str) -> str:
        return deployment if deployment in self._table().deployments else _OTHER

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition (OpenMetrics when ``accept`` asks for it, else Prometheus text) and its content type."""
        encoder, content_type = choose_encoder(accept)
        if not content_type.startswith("application/openmetrics-text"):
            content_type = "text/plain; version=0.0.4; charset=utf-8"
        return encoder(self.registry), content_type

    # -- the exposition: labelled sums of the series, built at scrape time -----------------------------------
    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("stellwerk_requests", "Requests finished, by model, answering deployment and "
                                       "HTTP status", labels=("model", "deployment", "status"))
        attempts = CounterMetricFamily("stellwerk_upstream_attempts", "Upstream attempts, by outcome (ok or the "
                                       "failure's class)", labels=("model", "deployment", "outcome"))
        tokens = CounterMetricFamily("stellwerk_tokens", "Tokens used, by kind (prompt or completion)",
                                     labels=("model", "deployment", "kind"))
        cost = CounterMetricFamily("stellwerk_cost_usd", "US dollars spent, from the deployments' prices",
                                   labels=("model", "deployment"))
        by_model: dict[str, tuple[list[int], list[float], list[int], list[float]]] = {}
        answered: dict[tuple[str, str], list[float]] = {}
        counted: dict[tuple[str, str, str], int] = {}
        for (model_name, deployment, status), series in self._series.items():
            model = self._model(model_name)  # names the current table no longer has are summed as "other"
            dep = "" if deployment is None else self._deployment(deployment)
            labels = (model, dep, str(status))
            counted[labels] = counted.get(labels, 0) + series.requests
            hist = by_model.setdefault(model, ([0] * len(series.duration), [0.0], [0] * len(series.ttft), [0.0]))
            _add(hist[0], series.duration)
            hist[1][0] += series.duration_sum
            _add(hist[2], series.ttft)
            hist[3][0] += series.ttft_sum
            if deployment is not None:
                sums = answered.setdefault((model, dep), [0.0, 0.0, 0.0, 0.0])
                sums[0] += series.requests
                sums[1] += series.prompt
                sums[2] += series.completion
                sums[3] += series.cost
        for labels, count in counted.items():
            requests.add_metric(labels, count)
        for (model, dep), (ok, prompt, completion, dollars) in answered.items():
            attempts.add_metric((model, dep, "ok"), ok)
            tokens.add_metric((model, dep, "prompt"), prompt)
            tokens.add_metric((model, dep, "completion"), completion)
            cost.add_metric((model, dep), dollars)
        for (model, dep, outcome), count in self._attempts.items():
            attempts.add_metric((model, dep, outcome), count)
        duration = HistogramMetricFamily("stellwerk_request_duration_seconds", "Seconds from a request's arrival to "
                                         "its last byte", labels=("model",))
        ttft = HistogramMetricFamily("stellwerk_time_to_first_token_seconds", "Seconds to a stream's first chunk",
                                     labels=("model",))
        for model, (counts, total, ttft_counts, ttft_total) in by_model.items():
            duration.add_metric((model,), _buckets(DURATION_BUCKETS, counts), total[0])
            if any(ttft_counts):
                ttft.add_metric((model,), _buckets(TTFT_BUCKETS, ttft_counts), ttft_total[0])
        cache = CounterMetricFamily("stellwerk_cache_requests", "Response cache look-ups by result",
                                    labels=("model", "result"))
        looked_up = self._cache_counts() if self._cache_counts is not None else self.cache
        for model in self._table().models:
            for result in _CACHE_RESULTS:
                cache.add_metric((model, result), looked_up.get((model, result), 0))
        ratelimit = CounterMetricFamily("stellwerk_ratelimit_rejections", "Requests refused by a rate limit, by scope",
                                        labels=("scope",))
        for scope, count in self.ratelimit.items():
            ratelimit.add_metric((scope,), count)
        build = InfoMetricFamily("stellwerk_build", "The gateway's version")
        build.add_metric((), {"version": self._version, "python": platform.python_version()})
        saved = CounterMetricFamily("stellwerk_cache_saved_usd", "US dollars the response cache saved (what its hits "
                                    "cost when first answered)", labels=("model",))
        for model_name, dollars in self.saved.items():
            saved.add_metric((model_name,), dollars)
        families = [requests, duration, ttft, attempts, tokens, cost, cache, saved, ratelimit, build]
        return [*families, *self._by_key()] if self._per_key else families


def _add(into: list[Any], counts: list[int]) -> None:
    for i, count in enumerate(counts):
        into[i] += count


def _buckets(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs, ending with +Inf."""
    result: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip((*map(_le, bounds), "+Inf"), counts, strict=True):
        running += count
        result.append((bound, running))
    return result


def _le(bound: float) -> str:
    return repr(float(bound))


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
