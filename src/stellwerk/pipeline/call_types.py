"""The call's frozen record, :class:`Call` (re-exported by :mod:`stellwerk.pipeline.call`, where it is described;
its :class:`~stellwerk.pipeline.principal.Principal` is a compiled class of its own).

It lives in this module of its own because ``stellwerk.pipeline.call`` is compiled with mypyc, which drops
the keyword arguments of a class statement (``frozen=True, kw_only=True``); this module is not compiled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from stellwerk.errors import Attempt
from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage

from .principal import Principal

if TYPE_CHECKING:
    from stellwerk.routing.table import RoutingTable

    from .call import Facts, Operation

__all__ = ["Call", "Principal", "valid_traceparent"]

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def valid_traceparent(value: str | None) -> str | None:
    """``value`` when it is a well-formed W3C ``traceparent``, else None (never sent upstream)."""
    return value if value is not None and _TRACEPARENT.match(value) else None


class Call(msgspec.Struct, frozen=True, kw_only=True):
    """One client request. Build it with ``Router.call``; change it only with :meth:`evolve`."""

    request_id: str
    operation: Operation
    model: str
    """The model name the client asked for."""
    body: dict[str, Any]
    """The canonical (OpenAI-format) request body, validated; the call's own copy. Never change it: every
    attempt, hedge and resume of the call sends it."""
    stream: bool
    include_usage: bool
    """Streams: the client asked for a final usage chunk (``stream_options.include_usage``)."""
    started: float
    """The router's clock when the call was built."""
    deadline: float
    """The router's clock by which the answer must have begun (the model's ``deadline``, lowered by
    ``x-stellwerk-timeout``)."""
    headers: Mapping[str, str]
    """The client's request headers (lower-case names): routing hints, tags, the task hint."""
    facts: Facts
    table: RoutingTable
    """The routing table the call runs on, for all its hops (a config change does not move it)."""
    principal: Principal | None = None
    traceparent: str | None = None
    """W3C trace context; sent upstream with every attempt of this call."""
    completions: dict[str, Any] | None = None
    """The legacy completions request this chat call translates, sent as it is to deployments that declare
    ``supports_completions`` (the answer is read back as chat)."""
    responses: dict[str, Any] | None = None
    """The Responses API request this chat call translates, forwarded unchanged to deployments that declare
    ``native_responses`` (their answers reach the client as they came)."""
    native_only: tuple[str, str | None] | None = None
    """Why only ``native_responses`` deployments can serve this call (the translation's refusal: message,
    parameter); every other deployment refuses it, and the body is a stand-in for routing."""

    def evolve(self, **changes: Any) -> Call:
        """A copy with some fields changed (a middleware sets ``principal``, tracing sets ``traceparent``)."""
        return msgspec.structs.replace(self, **changes)

    def finished(self, now: float, *, status: int, deployment: str | None, attempts: tuple[Attempt, ...],
                 usage: Usage, cost: float, ttft: float | None = None, route: str = "",
                 principal: Principal | None = None, cache: str = "", saved: float = 0.0,
                 limited: str = "") -> RequestFinished:
        """The call's completion record (the one place it is built); ``principal`` defaults to the call's."""
        who = principal if principal is not None else self.principal
        return RequestFinished(
            request_id=self.request_id, operation=self.operation, model=self.model, deployment=deployment,
            status=status, attempts=attempts, latency=now - self.started, ttft=ttft, stream=self.stream, usage=usage,
            cost=cost, route=route, key_id=who.key_id if who is not None else None,
            team=who.team if who is not None else None, cache=cache, saved=saved, limited=limited)

    def upstream_headers(self) -> bytes:
        """Extra header lines every upstream request of this call carries."""
        if self.traceparent is None:
            return b""
        value = valid_traceparent(self.traceparent)
        return b"traceparent: %s\r\n" % value.encode("ascii") if value else b""
