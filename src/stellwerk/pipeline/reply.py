"""Replies: a complete answer (:class:`Result`) or a stream (anything shaped like :class:`Stream`).

Every reply has one completion hook, :meth:`on_complete`, which fires exactly
once with the final :class:`~stellwerk.telemetry.RequestFinished` (status,
usage, cost, deployment): at once for a complete answer, when the last chunk
was sent for a stream, and also when a stream is cut or the client goes away.
A middleware that answers by itself (a cache hit) returns the same shapes; for
a streamed call it can return a :class:`ReplayStream`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec
import orjson

from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage

__all__ = ["ChatResult", "Completion", "EmbeddingsResult", "Headers", "Hook", "ReplayStream", "Reply", "Result", "Stream",
           "Tap", "broke_off", "interrupted_event", "merge_headers"]

log = logging.getLogger("stellwerk.pipeline")

Hook = Callable[[RequestFinished], None]
Headers = tuple[tuple[str, str], ...]
Tap = Callable[[Sequence[tuple[Any, bytes | None]]], None]
"""Sees each batch of a stream's chunks as they pass: ``(dict or view, its JSON bytes or None)``."""
DONE = b"data: [DONE]\n\n"


class Completion:
    """The fire-once completion of a reply: hooks added before it finished wait, later ones run at once."""

    __slots__ = ("_hooks", "record")

    def __init__(self) -> None:
        self._hooks: list[Hook] = []
        self.record: RequestFinished | None = None

    def add(self, hook: Hook) -> None:
        if self.record is not None:
            _run(hook, self.record)
        else:
            self._hooks.append(hook)

    def finish(self, record: RequestFinished) -> None:
        if self.record is not None:
            return
        self.record = record
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            _run(hook, record)


def _run(hook: Hook, record: RequestFinished) -> None:
    try:
        hook(record)
    except Exception:
        log.exception("completion hook %r failed", hook)


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

    @property
    def body(self) -> bytes:
        """The answer as JSON bytes."""
        return self.raw if self.raw is not None else orjson.dumps(self.data)

    def on_complete(self, hook: Hook) -> None:
        """A complete answer has completed: ``hook`` runs at once."""
        if self.record is not None:
            _run(hook, self.record)


def merge_headers(base: list[tuple[str, str]], extra: Headers) -> list[tuple[str, str]]:
    """``base`` with ``extra`` added, an ``extra`` header replacing ``base``'s of the same name."""
    if not extra:
        return base
    names = {name for name, _ in extra}
    return [h for h in base if h[0] not in names] + list(extra)


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

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    def sse(self) -> AsyncIterator[bytes]:
        """The stream as OpenAI server-sent-event bytes, ending in ``[DONE]`` or an error event."""
        ...

    async def aclose(self) -> None:
        """Abandon the stream (the client went away)."""

    def on_complete(self, hook: Hook) -> None: ...


Reply = Result | Stream


def broke_off(deployment: str, reason: str) -> str:
    """What every front door says of a stream that broke off and could not be continued elsewhere."""
    return (f"The upstream stream from deployment '{deployment}' broke off and could not be continued elsewhere: "
            f"{reason}")


def interrupted_event(deployment: str, reason: str) -> bytes:
    """The OpenAI-shaped server-sent event that ends such a stream (``stream_interrupted``)."""
    return b"data: %s\n\n" % orjson.dumps({"error": {"message": broke_off(deployment, reason), "type": "upstream_error",
                                                      "param": None, "code": "stream_interrupted"}})


class ReplayStream:
    """A stream of chunks that are already known (a cache hit, a middleware's own answer)."""

    def __init__(self, chunks: Sequence[dict[str, Any]], *, model: str, deployment: str, request_id: str,
                 usage: Usage, started: float, clock: Callable[[], float], route: str = "", headers: Headers = (),
                 cache: str = "", saved: float = 0.0) -> None:
        self.model = model
        self.deployment = deployment
        self.attempts = 0
        self.request_id = request_id
        self.route = route
        self.usage: Usage | None = usage
        self.cost = 0.0
        self.headers = headers
        self._cache = cache
        self._saved = saved
        self._chunks = list(chunks)
        self._started = started
        self._clock = clock
        self._completion = Completion()

    def on_complete(self, hook: Hook) -> None:
        self._completion.add(hook)

    def _finish(self, status: int) -> None:
        now = self._clock()
        self._completion.finish(RequestFinished(
            request_id=self.request_id, operation="chat", model=self.model, deployment=self.deployment, status=status,
            attempts=(), latency=now - self._started, ttft=None, stream=True, usage=self.usage or Usage(), cost=0.0,
            route=self.route, cache=self._cache, saved=self._saved if status == 200 else 0.0))

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._dicts()

    async def _dicts(self) -> AsyncIterator[dict[str, Any]]:
        status = 499
        try:
            for chunk in self._chunks:
                yield chunk
            status = 200
        finally:
            self._finish(status)

    async def sse(self) -> AsyncIterator[bytes]:
        async for chunk in self:
            yield b"data: %s\n\n" % orjson.dumps(chunk)
        yield DONE

    async def aclose(self) -> None:
        self._finish(499)
