"""Configs and scenarios for the simulator's tests, as dicts."""

from __future__ import annotations

from typing import Any

from stellwerk.compose import load_dict
from stellwerk.simulate import Scenario, simulate


def dep(id: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "provider": "openai", "model": f"m-{id}", "api_key": "sk-test", **fields}


def config(*deployments: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {"models": [{"name": "chat", "deployments": list(deployments), **model}]}


def run(cfg: dict[str, Any], scenario: dict[str, Any], seed: int = 1) -> dict[str, Any]:
    return simulate(load_dict(cfg), Scenario.from_dict(scenario), seed=seed)


NO_BREAKER = {"consecutive_failures": 1000, "failure_rate": 1.0, "min_requests": 1_000_000}
FAST = {"ttft": 0.1, "tokens_per_second": 0}
"""A deployment that answers in 0.1 s: few events per request, so the tests stay quick."""
