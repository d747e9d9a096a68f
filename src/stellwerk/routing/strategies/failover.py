"""``failover``: the deployments in the order they are listed; the first healthy one answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["failover"]

T = TypeVar("T")


def failover(candidates: Sequence[T]) -> Sequence[T]:
    return candidates
