"""A/B experiment accounting: a listener of finished requests, per variant of the deployments involved."""

from __future__ import annotations

from collections.abc import Callable

from stellwerk.telemetry import Event, RequestFinished

from .table import RoutingTable

__all__ = ["ExperimentRecorder"]


class ExperimentRecorder:
    """Subscribe to :class:`RequestFinished`: every failed attempt counts as an error of its deployment's variant,
    the answer as a success with its latency and cost. Requests the client abandoned say nothing."""

    def __init__(self, table: Callable[[], RoutingTable]) -> None:
        self._table = table
        self.subscribed = False

    def __call__(self, event: Event) -> None:
        if not isinstance(event, RequestFinished) or event.status == 499:
            return
        table = self._table()
        for attempt in event.attempts:
            self._record(table, attempt.deployment, None, True, 0.0)
        if event.deployment is not None:
            self._record(table, event.deployment, event.latency, False, event.cost)

    @staticmethod
    def _record(table: RoutingTable, dep_id: str, latency: float | None, error: bool, cost: float) -> None:
        dep = table.deployments.get(dep_id)
        if dep is None:
            return
        planner = table.models[dep.model].planner
        variant = planner.strategy.variant_of(dep_id) if planner.experiments is not None else None
        if planner.experiments is not None and variant is not None:
            planner.experiments.record(variant, latency, error, cost)
