"""What happened in a simulation, heard as the router's own events (the same ones the gateway's telemetry hears).

:class:`Recorder` is one listener on ``RequestFinished``, ``AttemptStarted`` and
``BreakerChanged``; it keeps one small tuple per request and per breaker change,
stamped with the virtual clock. :mod:`~stellwerk.simulate.report` turns them into numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from stellwerk.errors import Attempt
from stellwerk.telemetry import AttemptStarted, BreakerChanged, Event, RequestFinished

__all__ = ["Finished", "Recorder", "attempt_class"]


class Finished(NamedTuple):
    start: float
    """Virtual seconds when the request arrived."""
    model: str
    deployment: str | None
    status: int
    latency: float
    ttft: float | None
    cost: float
    attempts: int
    """Upstream attempts started for it (hedges included)."""
    failed: tuple[str, ...]
    """The class of each failed attempt (see :func:`attempt_class`)."""


def attempt_class(attempt: Attempt) -> str:
    """``429``, ``5xx``, ``4xx``, or what broke without a status: ``timeout``, ``cut`` (connection closed or stream
    broken off), ``connect``, ``protocol``."""
    status = attempt.status
    if status:
        return "429" if status == 429 else "5xx" if status >= 500 else "4xx"
    reason = attempt.reason
    return "cut" if reason == "read" else reason


class Recorder:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.requests: list[Finished] = []
        self.breakers: list[tuple[float, str, str]] = []
        """``(time, deployment, new state)``."""
        self._attempts: dict[str, int] = {}

    kinds = (RequestFinished, AttemptStarted, BreakerChanged)

    def __call__(self, event: Event) -> None:
        if type(event) is RequestFinished:
            now = self._clock()
            attempts = self._attempts.pop(event.request_id, 0)
            self.requests.append(Finished(
                now - event.latency, event.model, event.deployment, event.status, event.latency, event.ttft,
                event.cost, attempts, tuple(attempt_class(a) for a in event.attempts)))
        elif type(event) is AttemptStarted:
            self._attempts[event.request_id] = self._attempts.get(event.request_id, 0) + 1
        elif type(event) is BreakerChanged:
            self.breakers.append((self._clock(), event.deployment, event.new))
