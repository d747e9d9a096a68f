"""Deployments and model groups at run time: a per-table view over live state that outlives tables.

:class:`DeploymentState` is what resilience and routing read and write: the
circuit breaker, the retry budget, requests in flight (the bulkhead), passive
health (latency and time-to-first-token EWMAs, recent TTFTs for hedging
quantiles, error counts) and routing statistics. It is kept across routing
tables while a deployment's identity (id, provider, model, api_base) stays.

:class:`Deployment` is immutable: one routing table's view of a deployment
(its config, adapter and endpoint) over that state. A runtime change (a new
weight) builds a new table with new views over the same states.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from stellwerk.config import DeploymentConfig, ModelConfig
from stellwerk.providers import Adapter, Endpoint
from stellwerk.providers.ratelimit import parse_duration
from stellwerk.resilience.backoff import Backoff
from stellwerk.resilience.breaker import BreakerState, CircuitBreaker
from stellwerk.resilience.budget import RetryBudget
from stellwerk.resilience.panic import in_panic
from stellwerk.state import Counter, StateStore
from stellwerk.telemetry import BreakerChanged, Events

from .strategies import EWMA, Candidate, PeakEWMA

if TYPE_CHECKING:
    from stellwerk.cluster.limits import SharedLimits

__all__ = ["Deployment", "DeploymentHealth", "DeploymentState", "ModelGroup"]

_PREFILL_NATIVE: Final = frozenset({"anthropic", "ollama"})


class DeploymentHealth:
    """Passive health: updated by every real answer (and by active probes)."""

    __slots__ = (
        "alpha",
        "failures",
        "last_error",
        "last_success",
        "latency",
        "probe_at",
        "probe_error",
        "probe_ok",
        "successes",
        "ttft",
        "ttfts",
    )

    def __init__(self, alpha: float = 0.2, window: int = 64) -> None:
        self.alpha = alpha
        self.latency: float | None = None
        self.ttft: float | None = None
        self.ttfts: collections.deque[float] = collections.deque(maxlen=window)
        self.successes = 0
        self.failures = 0
        self.last_success = float("-inf")
        self.last_error: str | None = None
        self.probe_ok: bool | None = None
        self.probe_at: float | None = None
        self.probe_error: str | None = None

    def success(self, now: float, latency: float | None, ttft: float | None) -> None:
        self.successes += 1
        self.last_success = now
        a = self.alpha
        if latency is not None:
            self.latency = latency if self.latency is None else self.latency + a * (latency - self.latency)
        if ttft is not None:
            self.ttft = ttft if self.ttft is None else self.ttft + a * (ttft - self.ttft)
            self.ttfts.append(ttft)

    def first_token(self, ttft: float) -> None:
        """A stream's time to its first chunk (its success is counted when it completes)."""
        a = self.alpha
        self.ttft = ttft if self.ttft is None else self.ttft + a * (ttft - self.ttft)
        self.ttfts.append(ttft)

    def failure(self, message: str) -> None:
        self.failures += 1
        self.last_error = message

    def ttft_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of recent times to first token (None before 5 observations)."""
        if len(self.ttfts) < 5:
            return None
        ordered = sorted(self.ttfts)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RoutingStats:
    """What latency-, throughput- and usage-aware strategies read (see :meth:`Deployment.snapshot`)."""

    __slots__ = ("_clock", "count_usage", "latency", "limit_requests", "limit_tokens", "remaining_requests",
                 "remaining_tokens", "remaining_until", "requests", "spt", "tokens", "tps", "ttft")

    def __init__(self, clock: Callable[[], float], requests: Counter, tokens: Counter, count_usage: bool = True) -> None:
        self.count_usage = count_usage
        """Count requests and tokens per minute (only deployments with limits, or usage-aware models, need it)."""
        self._clock = clock
        self.latency = PeakEWMA()
        self.ttft = PeakEWMA()
        self.spt = EWMA()
        """Seconds per output token."""
        self.tps = EWMA()
        """Output tokens per second."""
        self.requests = requests
        self.tokens = tokens
        self.remaining_requests: int | None = None
        self.remaining_tokens: int | None = None
        self.remaining_until = 0.0
        """The provider's remaining counts are forgotten after their reset time (default 60 s)."""
        self.limit_requests: int | None = None
        self.limit_tokens: int | None = None

    def rate_limit_headers(self, headers: Mapping[str, str]) -> None:
        """Remember the provider's ``x-ratelimit-*`` headers, when it sends them, until they reset."""
        if "x-ratelimit-remaining-requests" not in headers and "x-ratelimit-remaining-tokens" not in headers:
            return
        self.remaining_requests = _count(headers.get("x-ratelimit-remaining-requests"))
        self.remaining_tokens = _count(headers.get("x-ratelimit-remaining-tokens"))
        self.limit_requests = _count(headers.get("x-ratelimit-limit-requests")) or self.limit_requests
        self.limit_tokens = _count(headers.get("x-ratelimit-limit-tokens")) or self.limit_tokens
        resets = [parse_duration(headers[h]) for h in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
                  if h in headers]
        known = [r for r in resets if r is not None]
        self.remaining_until = self._clock() + (max(known) if known else 60.0)

    def remaining(self) -> tuple[int | None, int | None]:
        if self._clock() >= self.remaining_until:
            return None, None
        return self.remaining_requests, self.remaining_tokens


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class DeploymentState:
    """The live state of one deployment, shared by every routing table in which its identity is unchanged."""

    __slots__ = ("breaker", "budget", "health", "in_flight", "routing", "shared")

    def __init__(self, dep_id: str, model: ModelConfig, count_usage: bool, *, clock: Callable[[], float],
                 rng: random.Random, store: StateStore, events: Events) -> None:
        def changed(old: BreakerState, new: BreakerState) -> None:
            if events.wants(BreakerChanged):
                events.emit(BreakerChanged(deployment=dep_id, old=old.value, new=new.value))

        self.breaker = CircuitBreaker(model.breaker, clock, rng, on_change=changed)
        self.budget = RetryBudget(model.retry_budget, clock)
        self.health = DeploymentHealth()
        self.in_flight = 0
        self.routing = RoutingStats(clock, store.counter(f"rpm:{dep_id}", 60), store.counter(f"tpm:{dep_id}", 60),
                                    count_usage)
        self.shared: SharedLimits | None = None
        """Global rpm/tpm across replicas: claimed before each attempt, settled by :meth:`Lease.ok`."""


class Deployment:
    """One routing table's immutable view of a deployment: config, adapter, endpoint, and its live state."""

    __slots__ = ("_clock", "adapter", "breaker", "budget", "config", "endpoint", "health", "id", "index", "model",
                 "resume", "routing", "state", "weight")

    def __init__(self, config: DeploymentConfig, model: str, index: int, adapter: Adapter, state: DeploymentState,
                 clock: Callable[[], float]) -> None:
        self.index = index
        """Position in the model's list of deployments."""
        self.config = config
        self.id = config.id
        self.model = model
        self.adapter = adapter
        self.endpoint: Endpoint = adapter.endpoint(config)
        self.state = state
        self.breaker = state.breaker
        self.budget = state.budget
        self.health = state.health
        self.routing = state.routing
        self.resume = config.resume or ("prefill" if config.provider in _PREFILL_NATIVE else "instruct")
        self.weight = config.weight
        self._clock = clock

    @property
    def in_flight(self) -> int:
        return self.state.in_flight
    def observe(self, latency: float | None, ttft: float | None, completion_tokens: int, total_tokens: int) -> None:
        """A successful answer: feed the routing statistics."""
        now = self._clock()
        r = self.routing
        if ttft is not None:
            r.ttft.observe(ttft, now)
        if latency is not None:
            r.latency.observe(latency, now)
            generation = latency - (ttft or 0.0)
            if completion_tokens >= 16 and generation > 0:
                r.spt.observe(generation / completion_tokens, now)
                r.tps.observe(completion_tokens / generation, now)
        if r.count_usage:
            r.tokens.add(total_tokens)

    def snapshot(self) -> Candidate:
        now = self._clock()
        r, c = self.routing, self.config
        remaining_requests, remaining_tokens = r.remaining()
        return Candidate(
            id=self.id, index=self.index, weight=self.weight, priority=c.priority, input_per_mtok=c.price.input_per_mtok,
            output_per_mtok=c.price.output_per_mtok, in_flight=self.in_flight, latency=r.latency.value(now),
            ttft=r.ttft.value(now), seconds_per_token=r.spt.value(), tokens_per_second=r.tps.value(),
            observations=r.latency.count + r.ttft.count, healthy=self.breaker.available(), rpm_limit=c.rpm,
            tpm_limit=c.tpm, rpm_used=r.requests.total(), tpm_used=r.tokens.total(),
            remaining_requests=remaining_requests, remaining_tokens=remaining_tokens,
            limit_requests=r.limit_requests, limit_tokens=r.limit_tokens,
            context_window=c.context_window, max_output_tokens=c.max_output_tokens, supports_tools=c.supports_tools,
            supports_vision=c.supports_vision, supports_json=c.supports_json, tier=c.tier, tags=c.tags,
        )

    @property
    def full(self) -> bool:
        """At its bulkhead limit."""
        limit = self.config.max_in_flight
        return limit is not None and self.state.in_flight >= limit

    def __repr__(self) -> str:
        return f"Deployment({self.id!r}, provider={self.config.provider!r}, model={self.config.model!r})"


class ModelGroup:
    """A model name clients ask for, with its deployments in configured order."""

    __slots__ = ("backoff", "budget", "config", "deployments", "name")

    def __init__(self, config: ModelConfig, deployments: tuple[Deployment, ...], budget: RetryBudget,
                 rng: random.Random) -> None:
        self.config = config
        self.name = config.name
        self.deployments = deployments
        self.budget = budget
        self.backoff = Backoff(config.backoff, rng)

    def panic(self, healthy: int, total: int) -> bool:
        """Too few of ``total`` planned deployments are healthy: health is ignored (see :mod:`~stellwerk.resilience.panic`)."""
        return in_panic(healthy, total, self.config.panic_threshold)

    def timeout_for(self, deployment: Deployment) -> float:
        return deployment.config.timeout or self.config.timeout

    def ttft_timeout_for(self, deployment: Deployment) -> float:
        return self.config.ttft_timeout or self.timeout_for(deployment)

    def idle_timeout_for(self, deployment: Deployment) -> float:
        return self.config.idle_timeout or self.timeout_for(deployment)
