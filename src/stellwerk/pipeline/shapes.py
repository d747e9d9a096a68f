"""The shapes of a reply: :class:`Result` and its kinds, the :class:`Stream` protocol (re-exported by
:mod:`stellwerk.pipeline.reply`, where replies are described).

They live in this module of their own because ``stellwerk.pipeline.reply`` is compiled with mypyc: it would
check ``isinstance`` against a msgspec struct defined in a compiled module by the exact type (a ``ChatResult``
would not be a ``Result``), and ``runtime_checkable`` refuses a protocol class it built. This module is not
compiled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

import msgspec
import orjson

from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage

from .hooks import Hook, run_hook

__all__ = ["ChatResult", "EmbeddingsResult", "Headers", "Result", "Stream"]

Headers = tuple[tuple[str, str], ...]


class Result(msgspec.Struct):
    """A complete answer: the OpenAI-shaped ``data``, and how it was obtained."""

    data: dict[str, Any]
    raw: bytes | None
    """The upstream's bytes when ``data`` is unchanged from them (forwarded as is by the gateway)."""
    model: str
    deployment: str
    attempts: int
    usage: Usage
    cost: float
    latency: float
    request_id: str
    route: str = ""
    """Why this deployment answered (the ``x-stellwerk-route`` header)."""
    record: RequestFinished | None = None
    """The request's completion (set by whoever built the answer)."""
    headers: Headers = ()
    """Response headers a middleware adds (``x-stellwerk-cache``); they replace the front door's of the same name."""
    head: str = ""
    """More headers a middleware adds, rendered as wire text (``x-ratelimit-*`` of the limits stage; see
    :func:`~stellwerk.http.messages.encode_head`); never the front door's own names. The library's ``Router.chat``
    and ``embeddings`` move them into ``headers``."""

    @property
    def body(self) -> bytes:
        """The answer as JSON bytes."""
        return self.raw if self.raw is not None else orjson.dumps(self.data)

    def on_complete(self, hook: Hook) -> None:
        """A complete answer has completed: ``hook`` runs at once."""
        if self.record is not None:
            run_hook(hook, self.record)


class ChatResult(Result):
    """A complete chat answer. ``data`` is the OpenAI ``chat.completion`` object."""

    @property
    def text(self) -> str | None:
        """The first choice's message content."""
        choices = self.data.get("choices") or [{}]
        message = choices[0].get("message") or {}
        content = message.get("content")
        return content if isinstance(content, str) else None


class EmbeddingsResult(Result):
    """Embeddings. ``data`` is the OpenAI embeddings list object."""


@runtime_checkable
class Stream(Protocol):
    """A streamed chat answer, as front doors consume it."""

    model: str
    deployment: str
    """The deployment answering now (it changes when a broken stream is resumed elsewhere)."""
    attempts: int
    request_id: str
    route: str
    usage: Usage | None
    """Known once the stream has ended."""
    cost: float
    headers: Headers
    """Response headers a middleware adds (``x-stellwerk-cache``); they replace the front door's of the same name."""
    head: str
    """More headers a middleware adds, rendered as wire text (as :attr:`Result.head`)."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    def sse(self) -> AsyncIterator[bytes]:
        """The stream as OpenAI server-sent-event bytes, ending in ``[DONE]`` or an error event."""
        ...

    async def aclose(self) -> None:
        """Abandon the stream (the client went away)."""

    def on_complete(self, hook: Hook) -> None: ...
