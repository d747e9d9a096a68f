"""A streamed chat answer, committed to a deployment after its first chunk arrived.

Failures before the first chunk are failed over by the attempt loop; this
object takes over once the stream has begun. It yields the upstream's chunks,
keeps the usage (exact when the upstream reports it, estimated otherwise),
settles the lease of the deployment it reads from, and completes once (see
:meth:`on_complete`) when it ends, however it ends.

**Mid-stream failover.** If the upstream breaks off after the answer began
(connection cut, idle timeout, an error event), the text produced so far is
sent to another deployment as an assistant-prefix continuation and its tokens
are streamed on under the original chunk id, so the client sees one complete
answer. When that is impossible (tool calls in progress, resuming disabled, no
deployment left) the client gets an error event instead of ``[DONE]``: an
answer is never silently truncated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

import orjson

from stellwerk.errors import Outcome, UpstreamError
from stellwerk.generator_like import GeneratorLike
from stellwerk.http.transport import TransportError
from stellwerk.pipeline import Call, Completion, Headers, Hook, Tap, interrupted_event
from stellwerk.providers import Chunk, ChunkView, chunk_dict
from stellwerk.telemetry import Events, StreamResumed
from stellwerk.usage import Usage, estimate_tokens, usage_from

from .attempts import Journey
from .operations import Opened
from .send import transport_error

__all__ = ["ChatStream", "Resume"]

_DONE: Final = b"data: [DONE]\n\n"

Resume = Callable[[str, int, str], Awaitable[Opened | None]]
"""``resume(partial_text, produced_tokens, broken_deployment_id)`` → a new opened stream, or None."""


class ChatStream:
    """Async-iterate for ``chat.completion.chunk`` dicts; the gateway uses :meth:`sse`.

    ``deployment`` and ``attempts`` are known at once (``deployment`` changes if
    the stream is resumed elsewhere); ``usage`` and ``cost`` once it has ended.
    """

    def __init__(self, call: Call, journey: Journey, opened: Opened, resume: Resume | None, *,
                 clock: Callable[[], float], events: Events) -> None:
        self.model = call.model
        self.deployment = opened.lease.deployment.id
        self.attempts = journey.attempts
        self.request_id = call.request_id
        self.usage: Usage | None = None
        self.cost = 0.0
        self.resumed = 0
        self.route = journey.explain(self.deployment)
        """Why this deployment answers (the ``x-stellwerk-route`` header)."""
        self.headers: Headers = ()
        self.head = ""
        self._tap: Tap | None = None
        self._call = call
        self._journey = journey
        self._opened = opened
        self._ttft = clock() - call.started
        self._clock = clock
        self._events = events
        self._resume = resume
        self._completion = Completion()
        self._text: list[str] = []
        self._tool_calls = False
        self._finished = False
        self._closed = False
        self._identity: dict[str, Any] | None = None
        self._earlier_cost = 0.0
        self._earlier_tokens = 0
        self._broke: UpstreamError | None = None
        """The break-off that could not be continued elsewhere (the stream ends with it)."""

    def on_complete(self, hook: Hook) -> None:
        """``hook(record)`` once the stream has ended, however it ended (at once if it has)."""
        self._completion.add(hook)

    def tap(self, tap: Tap) -> None:
        """``tap(batch)`` sees every batch of chunks the client gets, as it passes (the response cache collects
        a stream's answer with it). One tap per stream."""
        self._tap = tap

    # -- reading the upstream -----------------------------------------------
    async def _next_kept(self) -> list[Chunk] | None:
        """The next batch of chunks the client gets (None at the end of the answer). An upstream that breaks
        off is replaced by a continuation elsewhere; when none is possible its UpstreamError is raised (and
        kept in ``_broke``). One coroutine per batch, no generator between the upstream and the client."""
        while True:
            opened = self._opened
            try:
                if opened.first:
                    batch, opened.first = opened.first, []
                else:
                    decoder, response, idle = opened.decoder, opened.response, opened.idle_timeout
                    batch = []
                    while not batch:
                        if decoder.done:
                            return None
                        try:
                            data = await response.next_chunk(idle)
                        except TransportError as lost:  # not `err`: compiled, a name has one type per function
                            if self._finished:
                                return None  # the answer was complete; only the end marker was lost
                            raise transport_error(lost) from None
                        if not data:
                            if self._finished:
                                return None  # complete answer; the server just omitted its end marker
                            raise UpstreamError(Outcome.RETRY_HERE, "upstream ended the stream before the answer "
                                                "was complete", reason="read")
                        batch = decoder.feed(data)
                kept = self._account(batch)
            except UpstreamError as err:
                broke = err
            else:
                if kept:
                    if self._tap is not None:
                        self._tap(kept)
                    return kept
                continue
            # Resumed outside the except block: a compiled (mypyc) coroutine suspended in one would leave its
            # exception as the one being handled in every other task meanwhile.
            self._journey.failed.append(opened.lease.failed(broke))
            resumed = await self._continue_elsewhere()
            if resumed is None:
                self._broke = broke
                raise broke
            self._switch(resumed)

    def _end(self, status: int) -> None:
        """Close the upstream response and complete the stream (once; later calls do nothing). A stream that
        ended (200) lets its connection wait for the end of the upstream's message and go back to the pool."""
        self._opened.response.close(finished=status == 200)
        self._finish(status, self._broke if status == 502 else None)

    async def _continue_elsewhere(self) -> Opened | None:
        if self._resume is None or self._tool_calls or self._finished or not self._opened.resumable:
            return None
        partial = "".join(self._text)
        produced = estimate_tokens(len(partial))
        broken = self._opened.lease.deployment
        self._earlier_tokens += produced
        self._earlier_cost += produced * broken.config.price.output_per_mtok / 1e6
        self._opened.response.close()
        return await self._resume(partial, produced, broken.id)

    def _switch(self, opened: Opened) -> None:
        broken = self.deployment
        self._opened = opened
        self.deployment = opened.lease.deployment.id
        self.attempts = self._journey.attempts
        self.resumed += 1
        self.usage = None  # the continuation reports its own usage
        if self._events.wants(StreamResumed):
            self._events.emit(StreamResumed(request_id=self.request_id, model=self.model, broken=broken,
                                            resumed_on=self.deployment, chars=sum(map(len, self._text))))

    # -- accounting -----------------------------------------------------------
    def _account(self, batch: list[Chunk]) -> list[Chunk]:
        """Track text, tool calls, finish and usage; drop what the client should not see."""
        if self._identity is None and batch:
            first_chunk = batch[0][0]
            if isinstance(first_chunk, ChunkView):
                self._identity = {"id": first_chunk.id, "created": first_chunk.created, "model": first_chunk.model}
            else:
                self._identity = {"id": first_chunk.get("id"), "created": first_chunk.get("created"),
                                  "model": first_chunk.get("model")}
        append_text = self._text.append
        drop_usage = not self._call.include_usage
        dropped: list[int] | None = None
        for index, chunk in enumerate(batch):  # the hot path: an unresumed stream
            data = chunk[0]
            if data.__class__ is ChunkView:  # forwarded unchanged: read the view, never build a dict
                choices: Any = data.choices
                if choices:
                    first_choice = choices[0]
                    delta_view = first_choice.delta
                    if delta_view is not None:
                        content = delta_view.content
                        if content.__class__ is str:
                            append_text(content)
                        if delta_view.tool_calls and delta_view.has_tool_calls:  # empty Raw: absent
                            self._tool_calls = True
                    if first_choice.finish_reason:
                        self._finished = True
                usage = data.usage
            else:  # a dict from a translating adapter
                assert isinstance(data, dict)
                choices = data.get("choices")
                if choices:
                    first = choices[0]
                    if first.__class__ is dict:
                        delta = first.get("delta")
                        if delta.__class__ is dict:
                            content = delta.get("content")
                            if content.__class__ is str:
                                append_text(content)
                            if delta.get("tool_calls"):
                                self._tool_calls = True
                        if first.get("finish_reason"):
                            self._finished = True
                usage = data.get("usage")
            if usage is not None:
                self.usage = usage_from(usage) or self.usage
                if drop_usage and not choices:  # we asked for it; the client did not
                    if dropped is None:
                        dropped = []
                    dropped.append(index)  # by position: compiled, a chunk (a tuple) is rebuilt, never the same object
        keep = batch if dropped is None else [c for i, c in enumerate(batch) if i not in dropped]
        return self._as_continuation(keep) if self.resumed else keep

    def _as_continuation(self, batch: list[Chunk]) -> list[Chunk]:
        """A resumed stream's chunks as the client must see them: under the original stream's identity,
        without the continuation's opening role chunk, with usage for the whole answer."""
        identity = {k: v for k, v in (self._identity or {}).items() if v is not None}
        out: list[Chunk] = []
        for chunk in batch:
            data = chunk_dict(chunk)
            choices = data.get("choices")
            first = choices[0] if choices and isinstance(choices[0], dict) else {}
            delta = first.get("delta")
            if isinstance(delta, dict) and delta.get("role") and not delta.get("content") \
                    and not delta.get("tool_calls") and not first.get("finish_reason"):
                continue  # the client has had an opening role chunk already
            usage = data.get("usage")
            if isinstance(usage, dict) and self._earlier_tokens:
                completion = int(usage.get("completion_tokens") or 0) + self._earlier_tokens
                data = {**data, "usage": {**usage, "completion_tokens": completion,
                                          "total_tokens": int(usage.get("prompt_tokens") or 0) + completion}}
            out.append(({**data, **identity}, None))  # re-encoded
        return out

    def _finish(self, status: int, error: UpstreamError | None) -> None:
        """Settle the lease and complete the stream (once)."""
        if self._closed:
            return
        self._closed = True
        lease = self._opened.lease
        dep = lease.deployment
        if self.usage is None:
            chars = sum(map(len, self._text))
            self.usage = Usage(estimate_tokens(self._call.facts.prompt_chars), estimate_tokens(chars), estimated=True)
        elif self.resumed:
            self.usage = Usage(self.usage.prompt_tokens, self.usage.completion_tokens + self._earlier_tokens,
                               self.usage.cached_tokens, estimated=True)
        self.cost = self.usage.cost(dep.config.price) + self._earlier_cost
        if error is None and status == 200:
            lease.ok(self.usage)
        else:
            lease.release()  # a failure was recorded when the stream broke; a client that left says nothing
        self._completion.finish(self._call.finished(
            self._clock(), status=status, deployment=self.deployment if error is None else None,
            attempts=tuple(self._journey.failed), usage=self.usage, cost=self.cost, ttft=self._ttft,
            route=self.route if error is None else ""))

    @property
    def prompt_usage(self) -> Usage | None:
        """The prompt's counts as the upstream reported them before its answer ended (Anthropic's
        ``message_start``, Gemini's first usage), else None (OpenAI-format upstreams report them at the end)."""
        return usage_from(getattr(self._opened.decoder, "prompt_usage", None))

    @property
    def text(self) -> str:
        """The answer's text so far (all of it once the stream has ended)."""
        return "".join(self._text)

    # -- consumers ------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return _Dicts(self)

    def sse(self) -> AsyncIterator[bytes]:
        """The stream as server-sent-event bytes, ending in ``[DONE]`` or an error event."""
        return _SSE(self)

    async def aclose(self) -> None:
        """Abandon the stream (closes the upstream connection)."""
        if not self._closed:
            self._opened.response.close()
            self._finish(499, None)


# The two consumers (see :mod:`stellwerk.generator_like`) end the stream (``_end``) where the generators they
# replace did: ``sse`` before it hands out ``[DONE]`` (200) or the error event (502), and once more when asked for
# more after that (the generator's ``finally``); iterating, when the answer is complete (200) or broke off (502,
# raised); both with 499 when reading fails otherwise (cancelled), or when closed or dropped after the first step.


class _SSE(GeneratorLike[bytes]):
    """:meth:`ChatStream.sse`: server-sent-event bytes, one batch of chunks per step."""

    def __init__(self, stream: ChatStream) -> None:
        super().__init__()
        self._stream = stream
        self._status = 499  # unless it ends otherwise: cancelled, or the client went away
        self._last = False
        """The ``[DONE]`` or error event has been handed out: the next step ends the iteration."""

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        if self._last:
            self._stop()
            raise StopAsyncIteration
        self._started = True
        stream = self._stream
        try:
            try:
                batch = await stream._next_kept()
            except UpstreamError as err:
                self._status = 502
                self._last = True
                stream._end(502)
                return interrupted_event(stream.deployment, err.message)
            if batch is None:
                self._status = 200
                self._last = True
                stream._end(200)
                return _DONE
            if len(batch) == 1:
                data, raw = batch[0]
                return b"data: %s\n\n" % (raw if raw is not None else orjson.dumps(data))
            return b"".join([b"data: %s\n\n" % (raw if raw is not None else orjson.dumps(data)) for data, raw in batch])
        except BaseException:
            self._stop()
            raise

    def _abandon(self) -> None:
        self._stream._end(self._status)


class _Dicts(GeneratorLike[dict[str, Any]]):
    """Iterating a :class:`ChatStream`: its chunks as dicts."""

    def __init__(self, stream: ChatStream) -> None:
        super().__init__()
        self._stream = stream
        self._batch: list[Chunk] = []
        self._next = 0

    async def __anext__(self) -> dict[str, Any]:
        if self._over:
            raise StopAsyncIteration
        self._started = True
        while self._next >= len(self._batch):
            try:
                batch = await self._stream._next_kept()
            except UpstreamError:
                self._end(502)
                raise
            except BaseException:
                self._stop()
                raise
            if batch is None:
                self._end(200)
                raise StopAsyncIteration
            self._batch, self._next = batch, 0
        chunk = self._batch[self._next]
        self._next += 1
        try:
            return chunk_dict(chunk)
        except BaseException:
            self._stop()
            raise

    def _end(self, status: int) -> None:
        self._over = True
        self._stream._end(status)

    def _abandon(self) -> None:
        self._stream._end(499)  # cancelled, or the consumer went away
