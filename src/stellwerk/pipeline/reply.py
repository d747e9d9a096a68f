"""Replies: a complete answer (:class:`Result`) or a stream (anything shaped like :class:`Stream`).

Every reply has one completion hook, :meth:`on_complete`, which fires exactly
once with the final :class:`~stellwerk.telemetry.RequestFinished` (status,
usage, cost, deployment): at once for a complete answer, when the last chunk
was sent for a stream, and also when a stream is cut or the client goes away.
A middleware that answers by itself (a cache hit) returns the same shapes; for
a streamed call it can return a :class:`ReplayStream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import orjson

from stellwerk.generator_like import GeneratorLike
from stellwerk.telemetry.events import RequestFinished
from stellwerk.usage import Usage

from .hooks import Hook, run_hook
from .shapes import ChatResult, EmbeddingsResult, Headers, Result, Stream

if TYPE_CHECKING:
    from typing_extensions import TypeIs

__all__ = ["ChatResult", "Completion", "EmbeddingsResult", "Headers", "Hook", "ReplayStream", "Reply", "Result", "Stream",
           "Tap", "broke_off", "interrupted_event", "is_result", "merge_headers"]

Tap = Callable[[Sequence[tuple[Any, bytes | None]]], None]
"""Sees each batch of a stream's chunks as they pass: ``(dict or view, its JSON bytes or None)``."""
DONE: Final = b"data: [DONE]\n\n"


class Completion:
    """The fire-once completion of a reply: hooks added before it finished wait, later ones run at once."""

    __slots__ = ("_hooks", "record")

    def __init__(self) -> None:
        self._hooks: list[Hook] = []
        self.record: RequestFinished | None = None

    def add(self, hook: Hook) -> None:
        if self.record is not None:
            run_hook(hook, self.record)
        else:
            self._hooks.append(hook)

    def finish(self, record: RequestFinished) -> None:
        if self.record is not None:
            return
        self.record = record
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            run_hook(hook, record)


_IS_RESULT: Final[dict[type, bool]] = {}


def is_result(reply: object) -> TypeIs[Result]:
    """``isinstance(reply, Result)`` by one dict lookup of the reply's type: the subclass check of a msgspec
    struct (``ChatResult`` is not ``Result`` itself) costs some 500 instructions, and a request asks several
    times."""
    kind = type(reply)
    known = _IS_RESULT.get(kind)
    if known is None:
        known = _IS_RESULT[kind] = isinstance(reply, Result)
    return known


def merge_headers(base: list[tuple[str, str]], extra: Headers) -> list[tuple[str, str]]:
    """``base`` with ``extra`` added, an ``extra`` header replacing ``base``'s of the same name."""
    if not extra:
        return base
    names = {name for name, _ in extra}
    return [h for h in base if h[0] not in names] + list(extra)


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
        self.head = ""
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
        return _ReplayDicts(self)

    def sse(self) -> AsyncIterator[bytes]:
        return _ReplaySSE(_ReplayDicts(self))

    async def aclose(self) -> None:
        self._finish(499)


# (See :mod:`stellwerk.generator_like`.) The reply completes (200) when its last chunk was handed out and the
# consumer asks for more, and (499) when closed or dropped after the first step.


class _ReplayDicts(GeneratorLike[dict[str, Any]]):
    """Iterating a :class:`ReplayStream`: its chunks."""

    def __init__(self, stream: ReplayStream) -> None:
        super().__init__()
        self._stream = stream
        self._next = 0

    async def __anext__(self) -> dict[str, Any]:
        if self._over:
            raise StopAsyncIteration
        self._started = True
        chunks = self._stream._chunks
        if self._next < len(chunks):
            self._next += 1
            return chunks[self._next - 1]
        self._over = True
        self._stream._finish(200)
        raise StopAsyncIteration

    def _abandon(self) -> None:
        self._stream._finish(499)


class _ReplaySSE:
    """:meth:`ReplayStream.sse`: the chunks as server-sent events, then ``[DONE]``."""

    def __init__(self, chunks: _ReplayDicts) -> None:
        self._chunks = chunks
        self._done = False
        """``[DONE]`` has been handed out (or the iteration failed): the next step ends it."""

    def __aiter__(self) -> _ReplaySSE:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._done = True
            return DONE
        except BaseException:
            self._done = True
            raise
        try:
            return b"data: %s\n\n" % orjson.dumps(chunk)
        except BaseException as err:
            error = err
        self._done = True
        await self._chunks.aclose()  # outside the except block (see ChatStream._next_kept)
        raise error

    async def aclose(self) -> None:
        self._done = True
        await self._chunks.aclose()
