"""A scenario: how long to simulate, what traffic arrives, and how each deployment behaves.

    duration: 600                 # seconds of virtual time
    traffic:                      # or: traffic: {trace: past.jsonl} (relative to the scenario file)
      rps: 50                     # or steps: [{at: 0, rps: 20}, {at: 300, rps: 80}]
      models: {chat: 0.8, embed: 0.2}
      stream_share: 0.5
      prompt_tokens: {median: 400, p99: 6000}
      output_tokens: 200
    deployments:                  # by deployment id; unlisted ones behave as DEFAULT_DEPLOYMENT
      primary:
        ttft: {median: 0.4, p99: 2.0}
        tokens_per_second: 80
        errors: {"5xx": 0.01, "429": 0.02, timeout: 0.0, cut: 0.005}   # rates per attempt
        retry_after: 2            # seconds sent with 429s
        outages: [{start: 120, end: 300}]
        rpm: 600                  # the provider's own limit

A plain number is a constant; ``{median: X, p99: Y}`` is a lognormal distribution
(ttft, prompt_tokens, output_tokens). A model in ``models`` is sent embeddings requests
when its name contains ``embed``, chat otherwise; ``{share: 0.2, operation: embeddings}``
says so explicitly. Parsing is strict: unknown keys, wrong types and values out of
range raise :class:`ScenarioError` naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .distribution import Distribution

__all__ = ["DEFAULT_DEPLOYMENT", "DeploymentBehaviour", "Errors", "Scenario", "ScenarioError", "Traffic", "Window"]

Operation = Literal["chat", "embeddings"]


class ScenarioError(ValueError):
    """A scenario is invalid; the message names the key and what was expected."""


@dataclass(frozen=True, slots=True)
class Window:
    """An outage: every attempt in ``[start, end)`` fails (``mode``: answer ``status``, ``refuse`` or ``hang``)."""

    start: float
    end: float
    mode: Literal["status", "refuse", "hang"] = "status"
    status: int = 503


@dataclass(frozen=True, slots=True)
class Errors:
    """Shares of attempts that fail, each 0..1: a 5xx after the TTFT, a 429 at once, no answer at all, or a cut
    connection (a stream after some chunks, a complete answer before any byte)."""

    server: float = 0.0
    rate_limit: float = 0.0
    timeout: float = 0.0
    cut: float = 0.0


_TTFT = Distribution(0.3, 1.0)
_HUNDRED = Distribution.constant(100)


@dataclass(frozen=True, slots=True)
class DeploymentBehaviour:
    ttft: Distribution = _TTFT
    """Seconds to the first token (complete answers: before the tokens are generated)."""
    tokens_per_second: float = 60.0
    """Output pace; 0 = all tokens at once."""
    errors: Errors = Errors()
    retry_after: float = 1.0
    """Seconds sent in ``Retry-After`` with a 429 (rounded up to whole seconds on the wire)."""
    outages: tuple[Window, ...] = ()
    rpm: int | None = None
    """The provider's own limit, requests per minute (sliding 60 s): above it, 429s."""


DEFAULT_DEPLOYMENT = DeploymentBehaviour()
"""How a deployment the scenario does not list behaves: healthy, TTFT median 0.3 s (p99 1 s), 60 tokens/s."""


@dataclass(frozen=True, slots=True)
class ModelShare:
    model: str
    share: float
    operation: Operation


@dataclass(frozen=True, slots=True)
class Traffic:
    steps: tuple[tuple[float, float], ...] = ((0.0, 10.0),)
    """``(at, rps)``: from ``at`` seconds on, ``rps`` requests per second (Poisson arrivals)."""
    models: tuple[ModelShare, ...] = ()
    """Empty: every model of the config in equal shares."""
    stream_share: float = 0.0
    prompt_tokens: Distribution = _HUNDRED
    output_tokens: Distribution = _HUNDRED
    trace: Path | None = None
    """A JSON Lines file of past requests to replay instead (see :mod:`~stellwerk.simulate.trace`)."""


@dataclass(frozen=True, slots=True)
class Scenario:
    duration: float
    traffic: Traffic
    deployments: Mapping[str, DeploymentBehaviour] = field(default_factory=dict)
    source: str = "scenario"

    def behaviour(self, deployment: str) -> DeploymentBehaviour:
        return self.deployments.get(deployment, DEFAULT_DEPLOYMENT)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ScenarioError(f"{p}: {err}") from None
        return cls.from_dict(data, base=p.parent, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, *, base: Path = Path("."), source: str = "scenario") -> Scenario:
        """``base``: where a trace file named relative to the scenario is looked for."""
        try:
            top = _mapping("", data, {"duration", "traffic", "deployments"}, required={"duration", "traffic"})
            duration = _number("duration", top["duration"], low=0, strict_low=True)
            traffic = _traffic(top["traffic"], base)
            deployments = {str(name): _deployment(f"deployments.{name}", spec)
                           for name, spec in _mapping("deployments", top.get("deployments") or {}).items()}
        except ScenarioError as err:
            raise ScenarioError(f"{source}: {err}") from None
        return cls(duration, traffic, deployments, source)


# -- parsing ------------------------------------------------------------------------------------------------------
def _mapping(path: str, value: object, known: set[str] | None = None,
             required: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{path or '<root>'}: expected a mapping, got {value!r}")
    prefix = f"{path}." if path else ""
    if known is not None:
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ScenarioError(f"{prefix}{unknown[0]}: unknown key; expected one of {sorted(known)}")
    for key in sorted(required):
        if key not in value:
            raise ScenarioError(f"{prefix}{key}: required")
    return {str(k): v for k, v in value.items()}


def _number(path: str, value: object, *, low: float = 0.0, high: float = math.inf, strict_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScenarioError(f"{path}: expected a number, got {value!r}")
    if value < low or (strict_low and value == low) or value > high:
        lower = f"> {low:g}" if strict_low else f">= {low:g}"
        upper = "" if high == math.inf else f" and <= {high:g}"
        raise ScenarioError(f"{path}: expected a number {lower}{upper}, got {value!r}")
    return float(value)


def _distribution(path: str, value: object, *, positive: bool = False) -> Distribution:
    if isinstance(value, Mapping):
        spec = _mapping(path, value, {"median", "p99"}, required={"median", "p99"})
        median = _number(f"{path}.median", spec["median"], strict_low=positive)
        p99 = _number(f"{path}.p99", spec["p99"], strict_low=positive)
        if p99 < median:
            raise ScenarioError(f"{path}.p99: expected at least the median ({median:g}), got {p99:g}")
        return Distribution(median, p99)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{path}: expected a number or {{median: X, p99: Y}}, got {value!r}")
    return Distribution.constant(_number(path, value, strict_low=positive))


def _traffic(value: object, base: Path) -> Traffic:
    if isinstance(value, Mapping) and "trace" in value:
        spec = _mapping("traffic", value, {"trace"})
        trace = spec["trace"]
        if not isinstance(trace, str) or not trace:
            raise ScenarioError(f"traffic.trace: expected a file name, got {trace!r}")
        return Traffic(trace=base / trace)
    spec = _mapping("traffic", value, {"rps", "models", "stream_share", "prompt_tokens", "output_tokens"},
                    required={"rps"})
    return Traffic(
        steps=_steps(spec["rps"]),
        models=_models(spec.get("models", {})),
        stream_share=_number("traffic.stream_share", spec.get("stream_share", 0.0), high=1.0),
        prompt_tokens=_distribution("traffic.prompt_tokens", spec.get("prompt_tokens", 100), positive=True),
        output_tokens=_distribution("traffic.output_tokens", spec.get("output_tokens", 100), positive=True),
    )


def _steps(value: object) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        return ((0.0, _number("traffic.rps", value, strict_low=True)),)
    if not value:
        raise ScenarioError("traffic.rps: expected a number or a non-empty list of {at, rps} steps")
    steps: list[tuple[float, float]] = []
    for i, item in enumerate(value):
        step = _mapping(f"traffic.rps[{i}]", item, {"at", "rps"}, required={"at", "rps"})
        at = _number(f"traffic.rps[{i}].at", step["at"])
        if steps and at <= steps[-1][0]:
            raise ScenarioError(f"traffic.rps[{i}].at: steps must be in increasing order of time, got {at:g}")
        steps.append((at, _number(f"traffic.rps[{i}].rps", step["rps"])))
    if steps[0][0] != 0:
        raise ScenarioError("traffic.rps[0].at: the first step must be at 0")
    return tuple(steps)


def _models(value: object) -> tuple[ModelShare, ...]:
    shares: list[ModelShare] = []
    for name, spec in _mapping("traffic.models", value).items():
        path = f"traffic.models.{name}"
        operation: Operation = "embeddings" if "embed" in name.lower() else "chat"
        if isinstance(spec, Mapping):
            entry = _mapping(path, spec, {"share", "operation"}, required={"share"})
            share = _number(f"{path}.share", entry["share"], strict_low=True)
            op = entry.get("operation", operation)
            if op not in ("chat", "embeddings"):
                raise ScenarioError(f"{path}.operation: expected 'chat' or 'embeddings', got {op!r}")
            operation = op
        else:
            share = _number(path, spec, strict_low=True)
        shares.append(ModelShare(name, share, operation))
    return tuple(shares)


def _deployment(path: str, value: object) -> DeploymentBehaviour:
    spec = _mapping(path, value, {"ttft", "tokens_per_second", "errors", "retry_after", "outages", "rpm"})
    errors = _mapping(f"{path}.errors", spec.get("errors", {}), {"5xx", "429", "timeout", "cut"})
    rates = {k: _number(f"{path}.errors.{k}", errors.get(k, 0.0), high=1.0) for k in ("5xx", "429", "timeout", "cut")}
    if sum(rates.values()) > 1:
        raise ScenarioError(f"{path}.errors: the rates add up to more than 1 ({sum(rates.values()):g})")
    rpm = spec.get("rpm")
    if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
        raise ScenarioError(f"{path}.rpm: expected a whole number >= 1, got {rpm!r}")
    return DeploymentBehaviour(
        ttft=_distribution(f"{path}.ttft", spec.get("ttft", DEFAULT_DEPLOYMENT.ttft.to_dict())),
        tokens_per_second=_number(f"{path}.tokens_per_second",
                                  spec.get("tokens_per_second", DEFAULT_DEPLOYMENT.tokens_per_second)),
        errors=Errors(rates["5xx"], rates["429"], rates["timeout"], rates["cut"]),
        retry_after=_number(f"{path}.retry_after", spec.get("retry_after", DEFAULT_DEPLOYMENT.retry_after)),
        outages=_outages(f"{path}.outages", spec.get("outages", [])),
        rpm=rpm,
    )


def _outages(path: str, value: object) -> tuple[Window, ...]:
    if not isinstance(value, list):
        raise ScenarioError(f"{path}: expected a list of {{start, end}}, got {value!r}")
    windows = []
    for i, item in enumerate(value):
        spec = _mapping(f"{path}[{i}]", item, {"start", "end", "mode", "status"}, required={"start", "end"})
        start = _number(f"{path}[{i}].start", spec["start"])
        end = _number(f"{path}[{i}].end", spec["end"])
        if end <= start:
            raise ScenarioError(f"{path}[{i}].end: expected a time after start ({start:g}), got {end:g}")
        mode = spec.get("mode", "status")
        if mode not in ("status", "refuse", "hang"):
            raise ScenarioError(f"{path}[{i}].mode: expected 'status', 'refuse' or 'hang', got {mode!r}")
        status = spec.get("status", 503)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ScenarioError(f"{path}[{i}].status: expected an HTTP status 400..599, got {status!r}")
        windows.append(Window(start, end, mode, status))
    return tuple(windows)
