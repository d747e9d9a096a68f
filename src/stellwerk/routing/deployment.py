"""Deployments and model groups at run time: config, adapter, endpoint and live state.

The live state of a deployment is what resilience and routing read: its
circuit breaker, its retry budget, requests in flight (the bulkhead), and
passive health figures (latency and time-to-first-token EWMAs, recent TTFTs
for hedging quantiles, error counts) updated by every real answer.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable

from stellwerk.config import DeploymentConfig, ModelConfig
from stellwerk.providers import Adapter, Endpoint, get_adapter
from stellwerk.resilience.backoff import Backoff
from stellwerk.resilience.breaker import CircuitBreaker
from stellwerk.resilience.budget import RetryBudget

__all__ = ["Deployment", "DeploymentHealth", "ModelGroup"]

_PREFILL_NATIVE = frozenset({"anthropic", "ollama"})


class DeploymentHealth:
    """Passive health: updated by every real answer (and by active probes)."""

    __slots__ = (
        "alpha",
        "failures",
        "last_error",
        "last_failure",
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
        self.last_failure = float("-inf")
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

    def failure(self, now: float, message: str) -> None:
        self.failures += 1
        self.last_failure = now
        self.last_error = message

    def ttft_quantile(self, q: float) -> float | None:
        """The ``q`` quantile of recent times to first token (None before 5 observations)."""
        if len(self.ttfts) < 5:
            return None
        ordered = sorted(self.ttfts)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Deployment:
    __slots__ = (
        "adapter",
        "breaker",
        "budget",
        "config",
        "endpoint",
        "health",
        "id",
        "in_flight",
        "model",
        "resume",
    )

    def __init__(self, config: DeploymentConfig, model: ModelConfig, clock: Callable[[], float],
                 rng: random.Random) -> None:
        self.config = config
        self.id = config.id
        self.model = model.name
        self.adapter: Adapter = get_adapter(config.provider)
        self.endpoint: Endpoint = self.adapter.endpoint(config)
        self.in_flight = 0
        self.breaker = CircuitBreaker(model.breaker, clock, rng)
        self.budget = RetryBudget(model.retry_budget, clock)
        self.health = DeploymentHealth()
        self.resume = config.resume or ("prefill" if config.provider in _PREFILL_NATIVE else "instruct")

    @property
    def full(self) -> bool:
        """At its bulkhead limit."""
        limit = self.config.max_in_flight
        return limit is not None and self.in_flight >= limit

    def __repr__(self) -> str:
        return f"Deployment({self.id!r}, provider={self.config.provider!r}, model={self.config.model!r})"


class ModelGroup:
    """A model name clients ask for, with its deployments in configured order."""

    __slots__ = ("backoff", "budget", "config", "deployments", "name", "strategy_name")

    def __init__(self, config: ModelConfig, clock: Callable[[], float], rng: random.Random) -> None:
        self.config = config
        self.name = config.name
        self.deployments = tuple(Deployment(d, config, clock, rng) for d in config.deployments)
        self.strategy_name = config.strategy
        self.budget = RetryBudget(config.retry_budget, clock)
        self.backoff = Backoff(config.backoff, rng)

    def timeout_for(self, deployment: Deployment) -> float:
        return deployment.config.timeout or self.config.timeout

    def ttft_timeout_for(self, deployment: Deployment) -> float:
        return self.config.ttft_timeout or self.timeout_for(deployment)

    def idle_timeout_for(self, deployment: Deployment) -> float:
        return self.config.idle_timeout or self.timeout_for(deployment)
