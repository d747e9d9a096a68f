"""Planning one request on one model: filters narrow the candidates, the strategy ranks them.

    snapshots of the deployments ─► capability, limits, tags filters ─► strategy.rank
                                  ─► an order for the attempt loop + a Decision that explains it

A model whose strategy keeps the listed order (``failover``, ``task``) and
whose deployments declare nothing that could filter them (the common case)
skips snapshots entirely: its order is the configured one. Strategies that
choose routes (``task``) first pick a route: another model, or a subset of
the deployments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from stellwerk.routing.strategies import (
    CapabilityFilter,
    ExperimentStats,
    Filter,
    LimitsFilter,
    RequestFacts,
    Strategy,
    TagFilter,
    TagFilterOptions,
)

from .decision import Decision
from .deployment import Deployment, ModelGroup

__all__ = ["Decision", "Planner"]


class Planner:
    """The routing decision of one model. Built once per model and routing table; ``plan`` runs per request."""

    def __init__(self, group: ModelGroup, strategy: Strategy, experiments: ExperimentStats | None) -> None:
        self.group = group
        cfg = group.config
        self.name = cfg.strategy
        self.strategy = strategy
        self.filters: list[Filter] = [CapabilityFilter(), LimitsFilter(), TagFilter(TagFilterOptions(require=cfg.require_tags))]
        self.experiments = experiments
        deps = group.deployments
        self.by_id = {d.id: d for d in deps}
        self.trivial = strategy.keeps_listed_order and not cfg.require_tags and all(
            d.config.priority == 0 and not d.config.tags and d.config.rpm is None and d.config.tpm is None
            and d.config.supports_tools and d.config.supports_vision and d.config.supports_json
            and d.config.context_window is None and d.config.max_output_tokens is None for d in deps)
        self._trivial_summary = f"failover: {deps[0].id} (listed first)" if deps else "failover"
        self._trivial_order = [d.id for d in deps]

    def choose_route(self, task: Callable[[], Any]) -> Decision | None:
        """Route-choosing strategies: which route this request takes (None for the others).

        ``task`` gives the request's :class:`~stellwerk.routing.task.TaskRequest` (built only when asked).
        """
        if not self.strategy.chooses_routes:
            return None
        choice = self.strategy.choose_route(task())
        if choice is None:
            return None
        order = list(choice.deployments) if choice.deployments else [d.id for d in self.group.deployments]
        return Decision(model=self.group.name, strategy=self.name, summary=choice.reason, order=order,
                        route=choice.route, target=choice.target)

    def plan(self, facts: Callable[[], RequestFacts], *, only: list[str] | None = None,
             explain: bool = False, tagged: bool = False) -> tuple[list[Deployment], Decision]:
        """``tagged``: the request itself requires tags (header or metadata), so filters must run."""
        group = self.group
        deps = [self.by_id[i] for i in only if i in self.by_id] if only else list(group.deployments)
        if self.trivial and not explain and not tagged:
            if only:
                return deps, Decision(model=group.name, strategy=self.name, order=[d.id for d in deps],
                                      summary=f"failover: {deps[0].id if deps else '-'} (listed first)")
            return deps, Decision(model=group.name, strategy=self.name, summary=self._trivial_summary,
                                  order=self._trivial_order)
        request = facts()
        candidates = [d.snapshot() for d in deps]
        removed: list[tuple[str, str, str]] = []
        for f in self.filters:
            kept, gone = f.apply(candidates, request)
            removed.extend((dep_id, f.name, why) for dep_id, why in gone)
            candidates = kept
        ranking = self.strategy.rank(candidates, request) if candidates else None
        order = [self.by_id[s.id] for s in ranking.order] if ranking is not None else []
        summary = ranking.summary if ranking is not None else f"{self.name}: no deployment passed the filters"
        return order, Decision(
            model=group.name, strategy=self.name, summary=summary, order=[d.id for d in order],
            scores=list(ranking.order) if ranking is not None else [], removed=removed,
            candidates=[msgspec.to_builtins(d.snapshot()) for d in deps] if explain else [],
        )
