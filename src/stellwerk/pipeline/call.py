"""The Call: one client request, typed and frozen, built once at the edge.

Both front doors (OpenAI and Anthropic formats) and the library API build a
Call through :meth:`stellwerk.routing.Router.call`; from then on nothing reads
the raw request again. The facts that routing needs (prompt size, needed
capabilities, tags, the task hint) are computed from the body at most once,
on first use, by :class:`Facts`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from stellwerk.usage import estimate_tokens, prompt_chars

from .call_types import Call, Principal, valid_traceparent

if TYPE_CHECKING:
    from stellwerk.routing.strategies.base import RequestFacts
    from stellwerk.routing.task import TaskRequest

__all__ = ["Call", "Facts", "Operation", "Principal", "valid_traceparent"]

class Operation(enum.StrEnum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"


_UNSET: Final[Any] = object()


class Facts:
    """What strategies, filters and accounting may know about a request, each computed at most once.

    Immutable from the outside: every value is a pure function of the body and
    headers, computed on first use (most requests on a plain failover model
    need none of them).
    """

    __slots__ = ("_body", "_chars", "_headers", "_routing", "_stream", "_tagged", "_task", "_tokens")

    def __init__(self, body: dict[str, Any], headers: Mapping[str, str], stream: bool, chars: int | None = None) -> None:
        self._body = body
        """The call's own copy of the request (a dict: compiled code reads it without a method call)."""
        self._headers = headers
        self._stream = stream
        self._chars = chars
        """:func:`~stellwerk.usage.prompt_chars` of the body, when validation counted them already."""
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


_FACTS: Final[list[Any]] = []
"""``RequestFacts``, imported on first use (routing imports this module; an import statement in the function
would run the import machinery on every request)."""


def _routing_facts(body: Mapping[str, Any], headers: Mapping[str, str], stream: bool, tokens: int) -> RequestFacts:
    if not _FACTS:
        from stellwerk.routing.strategies.base import RequestFacts

        _FACTS.append(RequestFacts)
    facts_type = _FACTS[0]
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
    facts: RequestFacts = facts_type(
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
    return facts
