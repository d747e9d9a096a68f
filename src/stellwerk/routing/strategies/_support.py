"""Small pieces shared by the strategies: request token estimates, exploration, the ranking shape."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from .base import Candidate, Ranking, RequestFacts, Scored

__all__ = [
    "Assume",
    "empty",
    "expected_output",
    "explore",
    "fill_new",
    "optimistic",
    "ranked",
    "request_tokens",
    "response_time",
]

Assume = Literal["median", "best"]
"""What a new deployment is assumed to score: the median of the known ones, or the best of them."""


def expected_output(request: RequestFacts) -> int:
    """Output tokens to plan for: the client's maximum when set, else the expected length."""
    m = request.max_output_tokens
    return m if m is not None else request.expected_output_tokens


def request_tokens(request: RequestFacts) -> int:
    """Tokens this request will likely use: prompt plus :func:`expected_output`."""
    return request.prompt_tokens + expected_output(request)


def response_time(c: Candidate, stream: bool) -> float | None:
    """The time that matters for this request: ``ttft`` for streams, else ``latency`` (each the
    other when unknown); None before any observation."""
    first, second = (c.ttft, c.latency) if stream else (c.latency, c.ttft)
    return first if first is not None else second


def empty(name: str) -> Ranking:
    return Ranking((), f"{name}: no candidates")


def ranked(name: str, order: Sequence[Scored], why: str) -> Ranking:
    """The ranking of ``order`` with the summary ``name: first (why)``."""
    if not order:
        return empty(name)
    return Ranking(tuple(order), f"{name}: {order[0].id} ({why})")


def optimistic(known: list[float], assume: Assume, low_is_better: bool) -> float:
    """The score assumed for deployments without enough observations (0 when none is known)."""
    if not known:
        return 0.0
    if assume == "best":
        return min(known) if low_is_better else max(known)
    known = sorted(known)
    mid = len(known) // 2
    return known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2


def fill_new(
    candidates: Sequence[Candidate],
    scores: list[float | None],
    min_observations: int,
    assume: Assume,
    low_is_better: bool,
) -> tuple[list[float], list[bool]]:
    """Replace the scores of new candidates (no score, or fewer than ``min_observations``) by the
    :func:`optimistic` one; returns the scores and which candidates are new."""
    is_new: list[bool] = []
    known: list[float] = []
    for c, s in zip(candidates, scores, strict=True):
        if s is None or c.observations < min_observations:
            is_new.append(True)
        else:
            is_new.append(False)
            known.append(s)
    if len(known) == len(scores):
        return known, is_new
    assumed = optimistic(known, assume, low_is_better)
    return [assumed if f or s is None else s for s, f in zip(scores, is_new, strict=True)], is_new


def explore(rng: random.Random, probability: float, is_new: list[bool]) -> int | None:
    """With ``probability``, the position of a new candidate chosen at random (to try it first)."""
    if probability > 0.0 and any(is_new) and rng.random() < probability:
        new = [i for i, f in enumerate(is_new) if f]
        return new[rng.randrange(len(new))]
    return None
