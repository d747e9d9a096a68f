"""What the simulated provider does: the :class:`Profile` and its named presets.

A profile is a frozen value. It is built from keyword arguments, from a mapping
(``Profile.from_dict``, strict: unknown keys and wrong types are rejected with
the key's name), from a YAML file (``Profile.from_yaml``) or from a preset
(``Profile.preset("fast")``). ``load_profile`` accepts either a preset name or
a path. Live changes make a new profile with ``profile.updated({...})``.

Failure rates are shares of *all* requests, drawn with one uniform number per
request and laid out in this order on [0, 1)::

    rate_limit_rate | error_rate | hang_rate | drop_mid_stream_rate | stream_error_rate | malformed_rate | ok

If they add up to more than 1, the later ones get what is left.
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

__all__ = ["PRESETS", "Outage", "OutageMode", "Profile", "ProfileError", "load_profile"]

OutageMode = Literal["status", "refuse", "hang"]


class ProfileError(ValueError):
    """A profile value or mapping is invalid; the message names the key."""


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{key}: expected a number, got {value!r}")
    return float(value)


def _integer(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{key}: expected an integer, got {value!r}")
    return value


def _check_range(key: str, value: float, low: float, high: float = math.inf) -> None:
    if not low <= value <= high:
        upper = "" if high == math.inf else f" and {high}"
        raise ProfileError(f"{key}: expected a value between {low}{upper}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Outage:
    """A window, in seconds since the sim started (or was reset), in which every request fails.

    The window is ``[start, start + duration)``; with ``every`` it repeats with
    that period (``every`` must exceed ``duration``). ``mode`` says how requests fail:
    ``"status"`` answers with ``status`` (an OpenAI-shaped error), ``"refuse"``
    closes the connection without an answer, ``"hang"`` never answers.
    """

    start: float = 0.0
    """Seconds after the sim's start when the first window opens (>= 0)."""
    duration: float = 10.0
    """Length of each window in seconds (> 0)."""
    every: float | None = None
    """Period of repetition in seconds, or ``None`` for a single window."""
    status: int = 503
    """HTTP status answered in ``"status"`` mode (400..599)."""
    mode: OutageMode = "status"
    """``"status"``, ``"refuse"`` or ``"hang"``."""

    def __post_init__(self) -> None:
        _check_range("outages.start", _number("outages.start", self.start), 0.0)
        if _number("outages.duration", self.duration) <= 0:
            raise ProfileError(f"outages.duration: expected a positive number, got {self.duration!r}")
        if self.every is not None and _number("outages.every", self.every) <= self.duration:
            raise ProfileError(f"outages.every: must be greater than duration ({self.duration}), got {self.every!r}")
        _check_range("outages.status", _integer("outages.status", self.status), 400, 599)
        if self.mode not in get_args(OutageMode):
            raise ProfileError(f"outages.mode: expected one of {get_args(OutageMode)}, got {self.mode!r}")

    def active(self, t: float) -> bool:
        """Whether the window covers ``t`` seconds since the sim's start."""
        if t < self.start:
            return False
        offset = t - self.start
        if self.every is not None:
            offset %= self.every
        return offset < self.duration

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outage:
        if not isinstance(data, Mapping):
            raise ProfileError(f"outages: expected a mapping per outage, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProfileError(f"outages: unknown key(s) {unknown}; expected some of {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_RATES: Final = (
    "rate_limit_rate", "error_rate", "hang_rate", "drop_mid_stream_rate", "stream_error_rate", "malformed_rate",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """The simulated provider's behaviour. Every field has a default; the defaults are the ``fast`` preset."""

    name: str = "custom"
    """Label shown in logs and ``/_sim/stats``."""

    # -- latency -----------------------------------------------------------
    latency_ms: float = 0.0
    """Mean time to first token (streaming) or before work starts (non-streaming), in ms (>= 0)."""
    latency_sigma: float = 0.0
    """Shape of a lognormal TTFT with mean ``latency_ms``; 0 means a fixed ``latency_ms``."""
    tokens_per_second: float = 0.0
    """Output pace; 0 means unpaced (all tokens at once). Non-streaming answers take ttft + tokens / tps."""
    tokens_per_second_max: float = 0.0
    """If above ``tokens_per_second``, each request draws its pace uniformly from the range."""

    # -- output --------------------------------------------------------------
    output_tokens: int = 16
    """Words in each reply (one word = one token); ``max_tokens`` in the request cuts it (>= 1)."""
    words_per_chunk: int = 1
    """Words per streamed content chunk (>= 1)."""
    embedding_dimensions: int = 64
    """Length of embedding vectors unless the request asks for ``dimensions`` (>= 1)."""
    models: tuple[str, ...] = ("sim-model",)
    """Models listed by ``GET /v1/models``."""
    accept_any_model: bool = True
    """Accept model names not in ``models`` (else 404 ``model_not_found``)."""

    # -- injected failures ---------------------------------------------------
    error_rate: float = 0.0
    """Share of requests answered with a status from ``error_statuses`` (0..1)."""
    error_statuses: tuple[int, ...] = (500, 502, 503)
    """Statuses an injected error picks from, uniformly (each 400..599)."""
    rate_limit_rate: float = 0.0
    """Share of requests answered 429 ``rate_limit_exceeded`` (0..1)."""
    retry_after_s: float = 1.0
    """Seconds sent in ``Retry-After`` (rounded up) with a 429 (>= 0)."""
    hang_rate: float = 0.0
    """Share of requests accepted and never answered (0..1)."""
    drop_mid_stream_rate: float = 0.0
    """Share of requests cut off: streams after a few chunks, others before any byte (0..1)."""
    stream_error_rate: float = 0.0
    """Share of requests failed in-band: streams send a few chunks, then the protocol's error event
    (Anthropic ``event: error``, a Bedrock exception frame, ...); others get a status from ``error_statuses`` (0..1)."""
    malformed_rate: float = 0.0
    """Share of requests answered 200 with invalid JSON (or a broken SSE event) (0..1)."""
    outages: tuple[Outage, ...] = ()
    """Windows in which every request fails; see :class:`Outage`."""

    # -- request checks --------------------------------------------------------
    context_window: int = 128_000
    """Prompt tokens above this get 400 ``context_length_exceeded``; 0 disables the check."""
    content_policy_trigger: str = ""
    """A word that, found in the prompt (case-insensitive), gets 400 ``content_policy_violation``; "" disables."""

    seed: int = 0
    """Seed of the RNG behind failure draws, latency and reply words."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ProfileError(f"name: expected a string, got {self.name!r}")
        _check_range("latency_ms", _number("latency_ms", self.latency_ms), 0.0)
        _check_range("latency_sigma", _number("latency_sigma", self.latency_sigma), 0.0, 5.0)
        _check_range("tokens_per_second", _number("tokens_per_second", self.tokens_per_second), 0.0)
        _check_range("tokens_per_second_max", _number("tokens_per_second_max", self.tokens_per_second_max), 0.0)
        _check_range("output_tokens", _integer("output_tokens", self.output_tokens), 1, 1_000_000)
        _check_range("words_per_chunk", _integer("words_per_chunk", self.words_per_chunk), 1, 10_000)
        _check_range("embedding_dimensions", _integer("embedding_dimensions", self.embedding_dimensions), 1, 65_536)
        for rate in _RATES:
            _check_range(rate, _number(rate, getattr(self, rate)), 0.0, 1.0)
        if not self.error_statuses:
            raise ProfileError("error_statuses: expected at least one status")
        for status in self.error_statuses:
            _check_range("error_statuses", _integer("error_statuses", status), 400, 599)
        _check_range("retry_after_s", _number("retry_after_s", self.retry_after_s), 0.0)
        _check_range("context_window", _integer("context_window", self.context_window), 0)
        if not isinstance(self.content_policy_trigger, str):
            raise ProfileError(f"content_policy_trigger: expected a string, got {self.content_policy_trigger!r}")
        if not isinstance(self.accept_any_model, bool):
            raise ProfileError(f"accept_any_model: expected true or false, got {self.accept_any_model!r}")
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise ProfileError(f"models: expected a list of non-empty model names, got {self.models!r}")
        for outage in self.outages:
            if not isinstance(outage, Outage):
                raise ProfileError(f"outages: expected Outage values, got {outage!r}")
        _integer("seed", self.seed)

    # -- construction ------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Profile | None = None) -> Profile:
        """Build a profile from a mapping; keys not given keep ``base``'s values (default: the defaults)."""
        if not isinstance(data, Mapping):
            raise ProfileError(f"profile: expected a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ProfileError(f"profile: unknown key(s) {unknown}; expected some of {sorted(known)}")
        changes: dict[str, Any] = dict(data)
        for key in ("models", "error_statuses"):
            if key in changes:
                changes[key] = _as_tuple(key, changes[key])
        if "outages" in changes:
            changes["outages"] = tuple(
                o if isinstance(o, Outage) else Outage.from_dict(o) for o in _as_tuple("outages", changes["outages"])
            )
        try:
            return dataclasses.replace(base or cls(), **changes)
        except TypeError as exc:  # e.g. a non-hashable value in a tuple field
            raise ProfileError(f"profile: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> Profile:
        """Load a YAML mapping of profile fields; may name a ``preset:`` to start from."""
        import yaml

        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ProfileError(f"{path}: expected a mapping of profile fields at the top level")
        base = cls.preset(data.pop("preset")) if "preset" in data else None
        data.setdefault("name", Path(path).stem)
        try:
            return cls.from_dict(data, base=base)
        except ProfileError as exc:
            raise ProfileError(f"{path}: {exc}") from None

    @classmethod
    def preset(cls, name: str) -> Profile:
        """One of :data:`PRESETS` (``fast``, ``realistic``, ``flaky``, ``slow``, ``down``)."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ProfileError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}") from None

    def updated(self, changes: Mapping[str, Any]) -> Profile:
        """A copy with ``changes`` (a mapping of field names, as in ``from_dict``) applied."""
        return Profile.from_dict(changes, base=self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (tuples as lists, outages as mappings)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["models"] = list(self.models)
        out["error_statuses"] = list(self.error_statuses)
        out["outages"] = [o.to_dict() for o in self.outages]
        return out


def _as_tuple(key: str, value: object) -> tuple[Any, ...]:
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ProfileError(f"{key}: expected a list, got {value!r}")


PRESETS: Final[Mapping[str, Profile]] = types.MappingProxyType(
    {
        "fast": Profile(name="fast"),
        "realistic": Profile(
            name="realistic",
            latency_ms=300.0,
            latency_sigma=0.2,
            tokens_per_second=50.0,
            tokens_per_second_max=100.0,
            output_tokens=48,
        ),
        "flaky": Profile(
            name="flaky",
            latency_ms=50.0,
            latency_sigma=0.3,
            tokens_per_second=200.0,
            tokens_per_second_max=400.0,
            error_rate=0.1,
            rate_limit_rate=0.05,
            drop_mid_stream_rate=0.02,
        ),
        "slow": Profile(
            name="slow",
            latency_ms=2000.0,
            latency_sigma=0.3,
            tokens_per_second=10.0,
            tokens_per_second_max=20.0,
            output_tokens=48,
        ),
        "down": Profile(name="down", error_rate=1.0, error_statuses=(503,)),
    }
)
"""Named profiles: ``fast`` (no latency, for benchmarks), ``realistic`` (~300 ms TTFT, 50-100 tok/s),
``flaky`` (10 % 5xx, 5 % 429, 2 % dropped streams), ``slow`` (~2 s TTFT, 10-20 tok/s), ``down`` (always 503)."""


def load_profile(name_or_path: str) -> Profile:
    """A preset by name, or a YAML file by path (anything ending in .yaml/.yml or containing a slash)."""
    if name_or_path in PRESETS:
        return PRESETS[name_or_path]
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path or Path(name_or_path).is_file():
        return Profile.from_yaml(name_or_path)
    raise ProfileError(f"unknown preset {name_or_path!r}; expected one of {sorted(PRESETS)} or a YAML file")
