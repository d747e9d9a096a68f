"""The Call: one client request, typed and frozen, built once at the edge.

Both front doors (OpenAI and Anthropic formats) and the library API build a
Call through :meth:`stellwerk.routing.Router.call`; from then on nothing reads
the raw request again. The facts that routing needs (prompt size, needed
capabilities, tags, the task hint) are computed from the body at most once,
on first use, by :class:`Facts`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from stellwerk.errors import Attempt
from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage, estimate_tokens, prompt_chars

if TYPE_CHECKING:
    from stellwerk.routing.strategies.base import RequestFacts
    from stellwerk.routing.table import RoutingTable
    from stellwerk.routing.task import TaskRequest

__all__ = ["Call", "Facts", "Operation", "Principal", "valid_traceparent"]

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def valid_traceparent(value: str | None) -> str | None:
    """``value`` when it is a well-formed W3C ``traceparent``, else None (never sent upstream)."""
    return value if value is not None and _TRACEPARENT.match(value) else None


class Operation(enum.StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: set by the auth middleware (None while auth is off)."""

    key_id: str
    team: str | None = None
    scopes: frozenset[str] = frozenset()


_UNSET: Any = object()


class Facts:
    """What strategies, filters and accounting may know about a request, each computed at most once.

    Immutable from the outside: every value is a pure function of the body and
    headers, computed on first use (most requests on a plain failover model
    need none of them).
    """

    __slots__ = ("_body", "_chars", "_headers", "_routing", "_stream", "_tagged", "_task", "_tokens")

    def __init__(self, body: Mapping[str, Any], headers: Mapping[str, str], stream: bool) -> None:
        self._body = body
        self._headers = headers
        self._stream = stream
        self._chars: int | None = None
        self._tokens: int | None = None
        self._routing: RequestFacts | None = None
        self._tagged: bool | None = None
        self._task: Any = _UNSET

    @property
    def prompt_chars(self) -> int:
        if self._chars is None:
            self._chars = prompt_chars(self._body)
        return self._chars

    def prompt_tokens(self, exact: bool) -> int:
        """Prompt tokens: counted with the model's BPE when ``exact`` (some deployment declares a context
        window), estimated from the characters otherwise. An exact count, once made, is always used."""
        if self._tokens is None and exact:
            from stellwerk.tokens import count_prompt_tokens

            self._tokens = count_prompt_tokens(dict(self._body))
        return self._tokens if self._tokens is not None else estimate_tokens(self.prompt_chars)

    @property
    def counted_tokens(self) -> int | None:
        """The exact prompt token count, if one was made."""
        return self._tokens

    @property
    def max_output_tokens(self) -> int | None:
        limit = self._body.get("max_completion_tokens") or self._body.get("max_tokens")
        return limit if isinstance(limit, int) and not isinstance(limit, bool) else None

    def reserve_tokens(self, exact: bool) -> int:
        """Tokens to count against a deployment's per-minute window when an attempt starts."""
        output = self.max_output_tokens
        return self.prompt_tokens(exact) + (output if output is not None else 256)

    @property
    def tagged(self) -> bool:
        """The request itself requires tags (``x-stellwerk-tags`` or ``metadata.stellwerk_tags``)."""
        if self._tagged is None:
            metadata = self._body.get("metadata")
            self._tagged = "x-stellwerk-tags" in self._headers or (isinstance(metadata, dict)
                                                                    and "stellwerk_tags" in metadata)
        return self._tagged

    def routing(self, exact_tokens: bool) -> RequestFacts:
        """The facts strategies and filters rank on."""
        if self._routing is None:
            self._routing = _routing_facts(self._body, self._headers, self._stream, self.prompt_tokens(exact_tokens))
        return self._routing

    @property
    def task(self) -> TaskRequest:
        """What the task router reads: the last user message, system text, metadata, headers."""
        if self._task is _UNSET:
            from stellwerk.routing.task import TaskRequest

            self._task = TaskRequest.from_chat(self._body, self._headers)
        task: TaskRequest = self._task
        return task


def _last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _routing_facts(body: Mapping[str, Any], headers: Mapping[str, str], stream: bool, tokens: int) -> RequestFacts:
    from stellwerk.routing.strategies.base import RequestFacts

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
        prompt_tokens=tokens,
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
