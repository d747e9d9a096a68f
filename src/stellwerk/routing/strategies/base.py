"""What strategies see and return: snapshots in, an explained ranking out.

A strategy orders a model's candidate deployments for one request. It is a
small object built once per model from its options, with the clock and the
random generator injected; ``rank`` reads only the immutable snapshots and the
request facts it is given (it never touches live state), so every strategy is
testable as a pure function and every decision can be explained.

The router composes them: *filters* (capability, health, limits, tags)
narrow the candidates, then one *ranker* orders what is left, and the
resilience engine walks that order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from stellwerk.routing.task.rules import TaskRequest

__all__ = [
    "ALL",
    "Candidate",
    "Clock",
    "Filter",
    "Ranking",
    "RequestFacts",
    "Scored",
    "Strategy",
    "StrategyBase",
    "TaskChoice",
]

Clock = Callable[[], float]

ALL = "*"
"""The id of a filter's ``(id, why)`` entry that is a note about the whole set, not a removal:
the health filter's panic mode says ``("*", "panic: 1 of 4 healthy (< 50%), keeping all")``."""


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable view of one deployment at the moment of the decision."""

    id: str
    weight: float = 1.0
    priority: int = 0
    """Lower is tried first by ``failover`` when set; ties keep the listed order."""
    index: int = 0
    """Position in the config's list."""
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    in_flight: int = 0
    latency: float | None = None
    """Peak-EWMA of seconds per complete answer; None before the first observation."""
    ttft: float | None = None
    """Peak-EWMA of seconds to the first streamed token; None before the first observation."""
    seconds_per_token: float | None = None
    """EWMA of seconds per output token (decode speed) on long answers."""
    tokens_per_second: float | None = None
    """EWMA of observed output tokens per second."""
    observations: int = 0
    """How many answers the latency figures are based on (0 = new deployment)."""
    healthy: bool = True
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    rpm_used: int = 0
    """Requests started in the current 60-second window."""
    tpm_used: int = 0
    """Tokens used in the current 60-second window."""
    remaining_requests: int | None = None
    """From the provider's ``x-ratelimit-remaining-requests``, when it sends one."""
    remaining_tokens: int | None = None
    limit_requests: int | None = None
    """From ``x-ratelimit-limit-requests``: the provider's window limit behind ``remaining_requests``."""
    limit_tokens: int | None = None
    """From ``x-ratelimit-limit-tokens``: the provider's window limit behind ``remaining_tokens``."""
    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool = True
    supports_vision: bool = True
    supports_json: bool = True
    tier: int = 0
    """Quality tier (higher is better), for ``min_tier`` floors."""
    tags: Mapping[str, str] = msgspec.field(default_factory=dict)


class RequestFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What strategies may know about the request (computed once per request)."""

    model: str
    prompt_tokens: int = 0
    """Estimated prompt tokens."""
    max_output_tokens: int | None = None
    """``max_tokens`` / ``max_completion_tokens`` when the client set one."""
    expected_output_tokens: int = 256
    """For cost estimates when the client set no maximum."""
    stream: bool = False
    needs_tools: bool = False
    needs_vision: bool = False
    needs_json: bool = False
    text: str = ""
    """The last user message's text (for rules and the semantic classifier)."""
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    metadata: Mapping[str, Any] = msgspec.field(default_factory=dict)
    """The request's ``metadata`` object."""
    user: str | None = None
    """The request's ``user`` field or the API key's name, for sticky assignment."""


class Scored(msgspec.Struct, frozen=True):
    id: str
    score: float | None
    reason: str


class Ranking(msgspec.Struct, frozen=True):
    """The order to try, best first, each with its score and a short reason."""

    order: tuple[Scored, ...]
    summary: str
    """One line for the ``x-stellwerk-route`` header, e.g. ``latency: eu-1 (p2c ewma 0.21s vs 0.35s)``."""

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.order]


class TaskChoice(msgspec.Struct, frozen=True, kw_only=True):
    """A ``task`` strategy's route for one request: another model, or a subset of the deployments."""

    route: str
    reason: str
    target: str | None = None
    deployments: tuple[str, ...] | None = None


class Strategy(Protocol):
    """Orders candidates. ``name`` is the config's ``strategy`` value.

    Besides ``rank``, every strategy declares the optional hooks below (defaults
    in :class:`StrategyBase`), so that no code outside the registry needs to
    know a strategy by its name.
    """

    name: str
    keeps_listed_order: bool
    """With no priorities, filters or limits configured, the order is the listed one (the router then
    skips snapshots and filters entirely)."""
    counts_usage: bool
    """Reads requests and tokens per minute of every deployment (they are counted only when someone needs them)."""
    runs_experiments: bool
    """Splits traffic into variants whose results are accounted per variant (``/admin/experiments``)."""
    chooses_routes: bool
    """Chooses a route per request (:meth:`choose_route`) before ranking."""

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking: ...

    def variant_of(self, deployment_id: str) -> str | None:
        """The experiment variant a deployment belongs to."""
        ...

    def snapshot(self) -> dict[str, Any] | None:
        """What the strategy wants to show about its state (``/admin/experiments``)."""
        ...

    def choose_route(self, request: TaskRequest) -> TaskChoice | None:
        """A route for the request before ranking (``task``), or None."""
        ...


class StrategyBase:
    """The defaults of :class:`Strategy`'s optional hooks; strategies subclass it and override what they need."""

    name: str = ""
    keeps_listed_order: bool = False
    counts_usage: bool = False
    runs_experiments: bool = False
    chooses_routes: bool = False

    def variant_of(self, deployment_id: str) -> str | None:
        return None

    def snapshot(self) -> dict[str, Any] | None:
        return None

    def choose_route(self, request: TaskRequest) -> TaskChoice | None:
        return None


class Filter(Protocol):
    """Removes candidates that cannot or should not serve this request; says why for each."""

    name: str

    def apply(
        self, candidates: Sequence[Candidate], request: RequestFacts
    ) -> tuple[list[Candidate], list[tuple[str, str]]]:
        """Return the kept candidates and ``(id, why)`` for each removed one."""
        ...
