"""Looking into a routing table without sending anything: dry runs, health, experiments (the admin API)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from stellwerk.pipeline import Call

from .table import RoutingTable

__all__ = ["dry_run", "experiments", "health"]


def dry_run(call: Call) -> dict[str, Any]:
    """Where would this call go, and why? (``GET /admin/route``; nothing is sent upstream.)"""
    table, facts = call.table, call.facts
    steps: list[dict[str, Any]] = []
    name = call.model
    only: list[str] | None = None
    for _ in range(8):  # task routes may hand over to another model
        model = table.model(name)
        route = model.planner.choose_route(lambda: facts.task)
        if route is not None:
            steps.append(msgspec.to_builtins(route))
            if route.target is not None:
                name = route.target
                continue
            only = route.order
        routing = facts.routing(model.needs_tokens)
        _, decision = model.planner.plan(lambda r=routing: r, only=only, explain=True)  # type: ignore[misc]
        steps.append(msgspec.to_builtins(decision))
        breakers = {d.id: d.breaker.snapshot()["state"] for d in model.group.deployments}
        return {"model": call.model, "answered_by_model": name, "steps": steps, "breakers": breakers,
                "fallbacks": list(model.config.fallbacks)}
    raise ValueError("task routes form a loop")


def experiments(table: RoutingTable) -> dict[str, Any]:
    """Per-variant counts, latency, errors and cost of every A/B model (``GET /admin/experiments``)."""
    result: dict[str, Any] = {}
    for name, model in table.models.items():
        planner = model.planner
        if planner.experiments is not None:
            result[name] = {"variants": planner.experiments.snapshot(), "assignment": planner.strategy.snapshot()}
    return result


def health(table: RoutingTable, clock: Callable[[], float]) -> dict[str, Any]:
    """Health of every deployment (``GET /admin/health``)."""
    now = clock()
    models: dict[str, Any] = {}
    for name, model in table.models.items():
        group = model.group
        deployments: Mapping[str, Any] = {dep.id: {
            "provider": dep.config.provider,
            "model": dep.config.model,
            "available": dep.breaker.available(),
            "breaker": dep.breaker.snapshot(),
            "in_flight": dep.in_flight,
            "max_in_flight": dep.config.max_in_flight,
            "successes": dep.health.successes,
            "failures": dep.health.failures,
            "latency_ewma_ms": _ms(dep.health.latency),
            "ttft_ewma_ms": _ms(dep.health.ttft),
            "last_error": dep.health.last_error,
            "seconds_since_success": None if dep.health.successes == 0 else round(now - dep.health.last_success, 3),
            "probe": None if dep.health.probe_at is None else {
                "ok": dep.health.probe_ok, "seconds_ago": round(now - dep.health.probe_at, 3),
                "error": dep.health.probe_error},
            "retry_budget": dep.budget.snapshot(),
        } for dep in group.deployments}
        healthy = sum(1 for d in group.deployments if d.breaker.available())
        models[name] = {
            "healthy": healthy,
            "deployments_total": len(group.deployments),
            "panic": group.panic(healthy, len(group.deployments)),
            "retry_budget": group.budget.snapshot(),
            "deployments": deployments,
        }
    return {"models": models, "version": table.version}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
