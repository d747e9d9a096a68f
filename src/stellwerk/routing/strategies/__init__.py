"""Routing strategies: each orders a model's candidate deployments for one request.

A strategy is a pure function over a snapshot of the candidates; the attempt
loop walks the order it returns. Strategies are looked up by the config's
``strategy`` name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .failover import failover

__all__ = ["Strategy", "get_strategy", "strategy_names"]

T = TypeVar("T")
Strategy = Callable[[Sequence[T]], Sequence[T]]

_STRATEGIES: dict[str, Callable[[Sequence[object]], Sequence[object]]] = {
    "failover": failover,
}


def strategy_names() -> list[str]:
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> Callable[[Sequence[object]], Sequence[object]]:
    return _STRATEGIES[name]
