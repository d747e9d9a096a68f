"""The event kinds: small frozen records (re-exported by :mod:`stellwerk.telemetry.events`, where they are
described).

They live in this module of their own because ``stellwerk.telemetry.events`` is compiled with mypyc, which
drops the keyword arguments of a class statement (``frozen=True, kw_only=True``); this module is not compiled.
"""

from __future__ import annotations

import msgspec

from stellwerk.errors import Attempt
from stellwerk.usage import Usage

__all__ = [
    "AttemptFinished",
    "AttemptStarted",
    "BreakerChanged",
    "Event",
    "HedgeSent",
    "RequestFinished",
    "RequestStarted",
    "RetryBudgetRefused",
    "RouteDecided",
    "StreamResumed",
]


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every event."""


class RequestStarted(Event, frozen=True, kw_only=True):
    request_id: str
    operation: str
    model: str
    stream: bool


class RequestFinished(Event, frozen=True, kw_only=True):
    """One per request, however it ended: answered, failed, cut off or abandoned by the client."""

    request_id: str
    operation: str
    """``chat`` or ``embeddings``."""
    model: str
    deployment: str | None
    """The deployment that answered, or None when none did."""
    status: int
    """200; the error's status; 502 for a stream that broke off; 499 when the client went away."""
    attempts: tuple[Attempt, ...]
    """The attempts that failed before the answer (or all of them when none answered)."""
    latency: float
    """Seconds from the request reaching the router to the last byte of the answer."""
    ttft: float | None
    """Seconds to the first streamed chunk (streams only)."""
    stream: bool
    usage: Usage
    cost: float
    """US dollars, from the answering deployment's price (0 for an answer from the cache)."""
    route: str = ""
    """Why this deployment answered (the ``x-stellwerk-route`` header); empty when none did."""
    key_id: str | None = None
    """The gateway key's id (never the key), when auth is on."""
    team: str | None = None
    cache: str = ""
    """``hit`` or ``semantic-hit`` when the response cache answered (``deployment`` is then ``cache``);
    empty otherwise."""
    saved: float = 0.0
    """US dollars a cache hit saved: the cost of the answer when it was first obtained."""
    limited: str = ""
    """``key``, ``team`` or ``deployment`` when a rate limit or budget of that scope refused the request."""

    @property
    def upstream_attempts(self) -> int:
        return len(self.attempts) + (1 if self.deployment else 0)


class RouteDecided(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    strategy: str
    order: tuple[str, ...]
    summary: str


class AttemptStarted(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    deployment: str
    number: int
    """1 for the request's first upstream attempt, counting every deployment and hedge."""


class AttemptFinished(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    deployment: str
    outcome: str
    """``ok``, ``cancelled``, or the failure's outcome class (``retry_here``, ``move_on``, …)."""
    elapsed: float
    status: int | None = None
    """The upstream's HTTP status, when it answered one."""


class BreakerChanged(Event, frozen=True, kw_only=True):
    deployment: str
    old: str
    new: str
    """``closed``, ``open`` or ``half_open``."""


class RetryBudgetRefused(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    deployment: str | None
    """None when the model's budget refused; the deployment's id when its own did."""


class HedgeSent(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    slow: str
    hedge: str
    delay: float


class StreamResumed(Event, frozen=True, kw_only=True):
    request_id: str
    model: str
    broken: str
    resumed_on: str
    chars: int
    """Characters of the answer the client had before the break."""
