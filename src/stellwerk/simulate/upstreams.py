"""The simulated upstreams: one in-process :class:`~stellwerk.sim.SimProvider` per deployment, scripted by the scenario.

Each deployment of the config gets its own origin (``http://sim-N.invalid`` plus the
protocol's base path) and a simulated provider speaking its provider's wire protocol,
so the real adapters translate real wire bytes. Azure deployments are simulated as
OpenAI (the same wire format; only the URL layout differs). A deployment's
:class:`~.scenario.DeploymentBehaviour` becomes a :class:`~stellwerk.sim.Profile`:

    ttft {median, p99}      latency_ms (the lognormal's mean) and latency_sigma
    tokens_per_second       tokens_per_second
    errors 5xx/429/timeout/cut   error_rate / rate_limit_rate / hang_rate / drop_mid_stream_rate
    retry_after             retry_after_s
    outages [{start, end}]  outages [{start, duration}]
    rpm                     enforced by the transport (the provider's own limit)
"""

from __future__ import annotations

import collections
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import msgspec

from stellwerk.config import Config, DeploymentConfig
from stellwerk.http.server import Response
from stellwerk.sim import Outage, Profile, SimProvider, dialect_for

from .scenario import DeploymentBehaviour, Scenario, ScenarioError

__all__ = ["MAX_OUTPUT_TOKENS", "WORDS_PER_CHUNK", "Upstream", "profile_for", "simulated"]

_PROTOCOLS: Mapping[str, tuple[str, str]] = {
    "openai": ("openai", "/v1"), "azure": ("openai", "/v1"), "anthropic": ("anthropic", ""),
    "gemini": ("gemini", "/v1beta"), "ollama": ("ollama", ""), "bedrock": ("bedrock", ""),
}
"""Provider -> (the simulated provider's protocol, the base path a client of it is given)."""

WORDS_PER_CHUNK = 64
"""Tokens per streamed chunk: fewer, larger chunks keep 100k simulated requests fast. The first chunk comes at
the time to first token and the last when its last token is due, so TTFT and the end of a stream are exact;
in between, text arrives in bursts of 64 tokens at the deployment's pace."""
MAX_OUTPUT_TOKENS = 32_768
"""The longest answer simulated (drawn output tokens are cut to it)."""


def profile_for(behaviour: DeploymentBehaviour, *, name: str, seed: int, context_window: int = 0) -> Profile:
    errors = behaviour.errors
    return Profile(
        name=name,
        latency_ms=behaviour.ttft.mean * 1000,
        latency_sigma=min(behaviour.ttft.sigma, 5.0),
        tokens_per_second=behaviour.tokens_per_second,
        output_tokens=MAX_OUTPUT_TOKENS,  # each request's max_tokens says how many it gets
        words_per_chunk=WORDS_PER_CHUNK,
        error_rate=errors.server,
        rate_limit_rate=errors.rate_limit,
        retry_after_s=behaviour.retry_after,
        hang_rate=errors.timeout,
        drop_mid_stream_rate=errors.cut,
        outages=tuple(Outage(start=w.start, duration=w.end - w.start, mode=w.mode, status=w.status)
                      for w in behaviour.outages),
        context_window=context_window,
        seed=seed,
    )


class Upstream:
    """One deployment's simulated provider and its own rate limit (``rpm`` in a sliding 60 s window)."""

    __slots__ = ("_recent", "chunk_gap", "clock", "deployment", "dialect", "rpm", "sim", "violations")

    def __init__(self, deployment: str, sim: SimProvider, *, rpm: int | None, clock: Callable[[], float]) -> None:
        self.deployment = deployment
        self.sim = sim
        tps = sim.profile.tokens_per_second
        self.chunk_gap = 2 * sim.profile.words_per_chunk / tps if tps > 0 else 0.0
        """The longest wait between two chunks of a stream once it has begun (the last chunk waits for its last
        token: up to two chunks' time)."""
        self.dialect = dialect_for(sim.protocol)
        self.rpm = rpm
        self.clock = clock
        self._recent: collections.deque[float] = collections.deque()
        self.violations: list[float] = []
        """When requests above ``rpm`` arrived (each answered 429)."""

    def over_limit(self) -> Response | None:
        """The provider's 429 when this request would exceed its rpm, else None (and the request counts)."""
        if self.rpm is None:
            return None
        now = self.clock()
        recent = self._recent
        while recent and recent[0] <= now - 60.0:
            recent.popleft()
        if len(recent) >= self.rpm:
            self.violations.append(now)
            return self.dialect.errors.rate_limited("", recent[0] + 60.0 - now)
        recent.append(now)
        return None


@dataclass(frozen=True, slots=True)
class Simulated:
    config: Config
    """The config with every deployment pointed at its simulated origin."""
    upstreams: Mapping[str, Upstream]
    """By origin (``sim-N.invalid``)."""
    by_deployment: Mapping[str, Upstream]


def simulated(config: Config, scenario: Scenario, *, seed: int, clock: Callable[[], float],
              wall_clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> Simulated:
    """Simulated providers for every deployment, and ``config`` pointed at them. Call inside the virtual loop
    (outage windows count from the clock's now). Scenario entries for deployments the config lacks are unused
    (see :func:`~.runner.check_deployments`)."""
    by_id: dict[str, Upstream] = {}
    origins: dict[str, str] = {}
    models = []
    for model in config.models:
        deployments = []
        for d in model.deployments:
            if d.id not in by_id:
                by_id[d.id], origins[d.id] = _upstream(d, len(by_id), scenario, seed, clock, wall_clock, sleep)
            deployments.append(_pointed(d, origins[d.id]))
        models.append(msgspec.structs.replace(model, deployments=deployments))
    upstreams = {origins[d]: u for d, u in by_id.items()}
    return Simulated(msgspec.structs.replace(config, models=models), upstreams, by_id)


def _upstream(d: DeploymentConfig, index: int, scenario: Scenario, seed: int, clock: Callable[[], float],
              wall_clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]) -> tuple[Upstream, str]:
    try:
        protocol, _ = _PROTOCOLS[d.provider]
    except KeyError:
        raise ScenarioError(f"deployment {d.id}: provider {d.provider!r} cannot be simulated; "
                            f"expected one of {sorted(_PROTOCOLS)}") from None
    behaviour = scenario.behaviour(d.id)
    profile = profile_for(behaviour, name=d.id, seed=seed * 1000 + index, context_window=d.context_window or 0)
    sim = SimProvider(profile, protocol=protocol, clock=clock, wall_clock=wall_clock, sleep=sleep,
                      rng=random.Random(seed * 1000 + index))
    return Upstream(d.id, sim, rpm=behaviour.rpm, clock=clock), f"sim-{index}.invalid"


def _pointed(d: DeploymentConfig, origin: str) -> DeploymentConfig:
    base = f"http://{origin}{_PROTOCOLS[d.provider][1]}"
    if d.provider == "azure":
        return msgspec.structs.replace(d, provider="openai", api_base=base, api_version=None)
    return msgspec.structs.replace(d, api_base=base)
