"""The demo's scenario: simulated-provider profiles plus the gateway config routing over them.

The default scenario ships as ``demo.yaml`` next to this module. Its ``gateway``
section refers to each provider's address as ``${NAME_URL}`` (``${PRIMARY_URL}``
for the provider ``primary``); :meth:`Scenario.config` fills those in once the
simulated providers listen.

Outage schedules are read back from the profiles (:func:`is_down`,
:func:`next_change`) so the demo can show when a provider is down by design,
next to what the gateway observed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml

from stellwerk.compose import load_dict
from stellwerk.config import Config
from stellwerk.errors import ConfigError
from stellwerk.sim import Outage, Profile, ProfileError

__all__ = ["Scenario", "is_down", "last_change", "next_change", "url_variable"]


def url_variable(provider: str) -> str:
    """The placeholder naming a provider's base URL in the gateway section: ``primary`` -> ``PRIMARY_URL``."""
    return f"{provider.upper().replace('-', '_').replace('.', '_')}_URL"


@dataclass(frozen=True, slots=True)
class Scenario:
    providers: Mapping[str, Profile]
    """One simulated-provider profile per name, in file order."""
    gateway: Mapping[str, Any]
    """The gateway config as parsed YAML, with ``${NAME_URL}`` placeholders."""

    @classmethod
    def load(
        cls,
        text: str | None = None,
        *,
        seed: int = 0,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Scenario:
        """Parse a scenario (default: the shipped ``demo.yaml``).

        Provider ``i`` (in file order) gets seed ``seed + i``; ``overrides`` maps a
        provider name to profile fields replacing the file's (e.g. a faster outage
        schedule for tests).
        """
        source = "demo scenario"
        if text is None:
            text = files("stellwerk.demo").joinpath("demo.yaml").read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if not isinstance(data, dict) or set(data) != {"providers", "gateway"}:
            raise ConfigError(["<root>: expected exactly the keys 'providers' and 'gateway'"], source)
        raw_providers = data["providers"]
        if not isinstance(raw_providers, dict) or not raw_providers:
            raise ConfigError(["providers: expected a mapping of provider name to profile fields"], source)
        overrides = overrides or {}
        unknown = sorted(set(overrides) - set(raw_providers))
        if unknown:
            raise ConfigError([f"overrides: unknown provider(s) {unknown}"], source)
        providers: dict[str, Profile] = {}
        for i, (name, fields) in enumerate(raw_providers.items()):
            try:
                merged = {"name": name, **(fields or {}), "seed": seed + i, **overrides.get(name, {})}
                providers[str(name)] = Profile.from_dict(merged)
            except ProfileError as err:
                raise ConfigError([f"providers.{name}.{err}"], source) from None
        gateway = data["gateway"]
        if not isinstance(gateway, dict):
            raise ConfigError(["gateway: expected a Stellwerk config mapping"], source)
        return cls(providers, gateway)

    def config(self, base_urls: Mapping[str, str]) -> Config:
        """The gateway config with each provider's ``${NAME_URL}`` set to its base URL."""
        env = {url_variable(name): url for name, url in base_urls.items()}
        return load_dict(self.gateway, env=env, source="demo scenario (gateway)")


def is_down(outages: Iterable[Outage], t: float) -> bool:
    """Whether any outage window covers ``t`` seconds after the provider (re)started."""
    return any(o.active(t) for o in outages)


def next_change(outages: Iterable[Outage], t: float) -> float | None:
    """Seconds from ``t`` until some window opens or closes; None when the schedule is over."""
    best: float | None = None
    for o in outages:
        if t < o.start:
            step = o.start - t
        elif o.every is None:
            end = o.start + o.duration
            if t >= end:
                continue
            step = end - t
        else:
            offset = (t - o.start) % o.every
            step = o.duration - offset if offset < o.duration else o.every - offset
        best = step if best is None else min(best, step)
    return best


def last_change(outages: Iterable[Outage], t: float) -> float | None:
    """Seconds since some window last opened or closed, as of ``t``; None when none has yet."""
    best: float | None = None
    for o in outages:
        if t < o.start:
            continue
        offset = t - o.start if o.every is None else (t - o.start) % o.every
        step = offset if offset < o.duration else offset - o.duration
        best = step if best is None else min(best, step)
    return best
