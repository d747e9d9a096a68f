"""Planning one request on one model: filters narrow the candidates, the strategy ranks them.

    snapshots of the deployments ─► capability, limits, tags filters ─► strategy.rank
                                  ─► an order for the attempt loop + a Decision that explains it

A model whose strategy is ``failover`` and whose deployments declare nothing
that could filter them (the common case) skips snapshots entirely: its order
is the configured one. ``task`` models first choose a route (another model, or
a subset of their deployments) with rules and a semantic classifier.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from stellwerk.routing.strategies import (
    CapabilityFilter,
    ExperimentStats,
    Filter,
    LimitsFilter,
    RequestFacts,
    Scored,
    Strategy,
    TagFilter,
    TagFilterOptions,
    build_strategy,
)
from stellwerk.routing.task import TaskOptions, TaskRequest
from stellwerk.usage import estimate_tokens, prompt_chars

from .deployment import Deployment, ModelGroup

if TYPE_CHECKING:
    from stellwerk.routing.task import Embedder, TaskRouter

__all__ = ["Decision", "Planner", "request_facts"]


class Decision(msgspec.Struct, kw_only=True):
    """Why a request goes where it goes (``x-stellwerk-route``, ``GET /admin/route``)."""

    model: str
    strategy: str
    summary: str
    order: list[str]
    scores: list[Scored] = []
    removed: list[tuple[str, str, str]] = []
    """``(deployment, filter, why)`` for every candidate a filter removed."""
    route: str | None = None
    """``task`` models: the route chosen, and why."""
    target: str | None = None
    """``task`` models: the model the request continues on, if the route names one."""
    candidates: list[dict[str, Any]] = []
    """The snapshots the decision was made on (dry runs only)."""


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def request_facts(body: Mapping[str, Any], headers: Mapping[str, str], stream: bool,
                  prompt_tokens: int | None) -> RequestFacts:
    """What strategies and filters may know about a chat request."""
    tools = body.get("tools")
    fmt = body.get("response_format")
    vision = False
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            vision = True
            break
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    metadata = body.get("metadata")
    user = body.get("user")
    return RequestFacts(
        model=str(body.get("model", "")),
        prompt_tokens=prompt_tokens if prompt_tokens is not None else estimate_tokens(prompt_chars(body)),
        max_output_tokens=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        stream=stream,
        needs_tools=bool(tools) and body.get("tool_choice") != "none",
        needs_vision=vision,
        needs_json=isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"),
        text=_last_user_text(body),
        headers=headers,
        metadata=metadata if isinstance(metadata, dict) else {},
        user=user if isinstance(user, str) else headers.get("x-stellwerk-user"),
    )


class Planner:
    """The routing decision of one model. Built once per model; ``plan`` runs per request."""

    def __init__(self, group: ModelGroup, *, rng: random.Random, clock: Callable[[], float],
                 embedders: dict[str, Embedder]) -> None:
        self.group = group
        cfg = group.config
        self.name = cfg.strategy
        self.task: TaskRouter | None = None
        if cfg.strategy == "task":
            from stellwerk.routing.task import TaskRouter, load_embedder

            options = msgspec.convert(cfg.strategy_options, TaskOptions)
            needs_embedder = any(route.examples is None or route.examples for route in options.routes)
            embedder = None
            if needs_embedder:
                embedder = embedders.get(options.embedder)
                if embedder is None:
                    embedder = embedders[options.embedder] = load_embedder(options.embedder)
            self.task = TaskRouter.from_options(options, embedder)
            self.strategy: Strategy = build_strategy("failover", None, rng=rng, clock=clock)
        else:
            self.strategy = build_strategy(cfg.strategy, cfg.strategy_options, rng=rng, clock=clock)
        self.filters: list[Filter] = [CapabilityFilter(), LimitsFilter(), TagFilter(TagFilterOptions(require=cfg.require_tags))]
        self.experiments = ExperimentStats() if cfg.strategy == "ab" else None
        deps = group.deployments
        self._by_id = {d.id: d for d in deps}
        self.trivial = cfg.strategy in ("failover", "task") and not cfg.require_tags and all(
            d.config.priority == 0 and not d.config.tags and d.config.rpm is None and d.config.tpm is None
            and d.config.supports_tools and d.config.supports_vision and d.config.supports_json
            and d.config.context_window is None and d.config.max_output_tokens is None for d in deps)
        self._trivial_summary = f"failover: {deps[0].id} (listed first)" if deps else "failover"
        self._trivial_order = [d.id for d in deps]

    def update_options(self, options: Mapping[str, Any]) -> None:
        """Change the strategy's options at run time (A/B percentages, weights...)."""
        from stellwerk.routing.strategies import parse_options

        if self.task is not None:
            raise ValueError("strategy 'task' cannot change its options at run time; change the config")
        parsed = parse_options(self.name, options)
        for variant in getattr(parsed, "variants", None) or ():
            unknown = [d for d in variant.deployments if d not in self._by_id]
            if unknown:
                raise ValueError(f"variants: variant '{variant.name}' names unknown deployment(s) {', '.join(unknown)} "
                                 f"(model '{self.group.name}' has {', '.join(self._by_id)})")
        update = getattr(self.strategy, "update", None)
        if update is None:
            raise ValueError(f"strategy '{self.name}' cannot change its options at run time")
        update(parsed)

    def variant_of(self, deployment: str) -> str | None:
        variant_of = getattr(self.strategy, "variant_of", None)
        result = variant_of(deployment) if variant_of is not None else None
        return result if isinstance(result, str) else None

    def choose_route(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> Decision | None:
        """``task`` models: which route this request takes (None for other strategies)."""
        if self.task is None:
            return None
        decision = self.task.route(TaskRequest.from_chat(body, headers))
        route = self.task.routes.get(decision.route)
        target = route.target if route is not None else None
        order = list(route.deployments) if route is not None and route.deployments else [d.id for d in self.group.deployments]
        return Decision(model=self.group.name, strategy="task", summary=decision.reason, order=order,
                        route=decision.route, target=target)

    def plan(self, facts: Callable[[], RequestFacts], *, only: list[str] | None = None,
             explain: bool = False, tagged: bool = False) -> tuple[list[Deployment], Decision]:
        """``tagged``: the request itself requires tags (header or metadata), so filters must run."""
        group = self.group
        deps = [self._by_id[i] for i in only if i in self._by_id] if only else list(group.deployments)
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
        order = [self._by_id[s.id] for s in ranking.order] if ranking is not None else []
        summary = ranking.summary if ranking is not None else f"{self.name}: no deployment passed the filters"
        return order, Decision(
            model=group.name, strategy=self.name, summary=summary, order=[d.id for d in order],
            scores=list(ranking.order) if ranking is not None else [], removed=removed,
            candidates=[msgspec.to_builtins(d.snapshot()) for d in deps] if explain else [],
        )
