"""``task`` as a strategy of the registry: a route per request (rules, then the classifier), failover inside it.

numpy, tokenizers and the models load when a ``task`` model is built, not when this module is imported:
a gateway without task models never imports them (start-up time).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stellwerk.routing.strategies import StrategySpec, TaskChoice
from stellwerk.routing.strategies.base import Candidate, Clock, Ranking, RequestFacts, StrategyBase
from stellwerk.routing.strategies.failover import FailoverStrategy

from .options import HEAD_KEYWORDS, TaskOptions, check, head_source
from .rules import TaskRequest

if TYPE_CHECKING:
    from .embedders import Embedder
    from .head import LinearHead
    from .strategy import TaskRouter

__all__ = ["TaskStrategy", "task_spec"]


class TaskStrategy(StrategyBase):
    """Chooses a route with a :class:`TaskRouter`; within the route, deployments are tried in listed order."""

    name = "task"
    keeps_listed_order = True
    chooses_routes = True

    def __init__(self, router: TaskRouter) -> None:
        self.router = router
        self._failover = FailoverStrategy()

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        return self._failover.rank(candidates, request)

    def choose_route(self, request: TaskRequest) -> TaskChoice:
        decision = self.router.route(request)
        route = self.router.routes.get(decision.route)
        return TaskChoice(
            route=decision.route, reason=decision.reason, target=route.target if route is not None else None,
            deployments=tuple(route.deployments) if route is not None and route.deployments else None)


def _check(options: TaskOptions, model: Any, names: frozenset[str], where: str) -> list[str]:
    problems = check(options, where)
    ids = {d.id for d in model.deployments}
    for route in options.routes:
        if route.target is not None and route.target not in names:
            problems.append(f"{where}.routes: route '{route.name}' targets unknown model '{route.target}'")
        elif route.target == model.name:
            problems.append(f"{where}.routes: route '{route.name}' targets its own model")
        problems.extend(f"{where}.routes: route '{route.name}' names unknown deployment '{dep}'"
                        for dep in route.deployments or () if dep not in ids)
    if options.head not in HEAD_KEYWORDS and options.head.endswith(".npz"):
        if not Path(options.head).is_file():
            problems.append(f"{where}.head: no such file {options.head!r} (write one with 'stellwerk tune-task-router')")
        else:
            from .head import LinearHead

            try:
                LinearHead.load(options.head)
            except ValueError as err:
                problems.append(f"{where}.head: {err}")
    return problems


def task_spec() -> StrategySpec:
    """The registry entry of ``task``. Embedding models (~30 MB each) and heads are loaded once per registry
    and shared by every task model that names the same one."""
    embedders: dict[str, Embedder] = {}
    heads: dict[str, LinearHead] = {}

    def embedder_for(name: str) -> Embedder:
        from .embedders import load_embedder

        embedder = embedders.get(name)
        if embedder is None:
            embedder = embedders[name] = load_embedder(name)
        return embedder

    def build(options: TaskOptions, *, rng: random.Random, clock: Clock) -> TaskStrategy:
        from .head import LinearHead
        from .strategy import TaskRouter

        source = head_source(options)
        if source is not None:
            head = heads.get(source)
            if head is None:
                head = heads[source] = LinearHead.load(source)
            return TaskStrategy(TaskRouter.from_options(options, embedder_for(head.spec.embedder), head))
        embedder = None
        if any(route.examples is None or route.examples for route in options.routes):
            embedder = embedder_for(options.embedder)
        return TaskStrategy(TaskRouter.from_options(options, embedder))

    return StrategySpec(TaskOptions, build, check=_check)
