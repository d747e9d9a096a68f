"""A streamed chat answer, committed to one deployment after its first chunk arrived.

Failures before the first chunk are failed over by the router; this object
takes over once the stream has begun. It yields the upstream's chunks, keeps
the usage (exact when the upstream reports it, estimated otherwise) and emits
one :class:`~stellwerk.events.RequestRecord` when it ends, however it ends.

If the upstream breaks off after the stream began, the client gets an error
event (``data: {"error": ...}``) instead of ``data: [DONE]``: an answer is
never silently truncated.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from stellwerk.errors import Attempt, Outcome, UpstreamError
from stellwerk.events import Listener, RequestRecord, emit
from stellwerk.http.client import ClientResponse, TransportError
from stellwerk.providers import Chunk, StreamDecoder
from stellwerk.providers.redact import redact
from stellwerk.usage import Usage, estimate_tokens, usage_from

from .deployment import Deployment
from .send import transport_error

__all__ = ["ChatStream"]

_DONE = b"data: [DONE]\n\n"


class ChatStream:
    """Async-iterate for ``chat.completion.chunk`` dicts; the gateway uses :meth:`sse`.

    ``deployment`` and ``attempts`` are known at once; ``usage`` and ``cost``
    once the stream has ended.
    """

    def __init__(
        self,
        *,
        model: str,
        deployment: Deployment,
        response: ClientResponse,
        decoder: StreamDecoder,
        upstream: AsyncIterator[bytes],
        first: list[Chunk],
        include_usage: bool,
        failed: list[Attempt],
        started: float,
        ttft: float,
        request_id: str,
        prompt_chars: int,
        listeners: tuple[Listener, ...],
        clock: Callable[[], float],
    ) -> None:
        self.model = model
        self.deployment = deployment.id
        self.attempts = len(failed) + 1
        self.request_id = request_id
        self.usage: Usage | None = None
        self.cost = 0.0
        self._dep = deployment
        self._response = response
        self._decoder = decoder
        self._upstream = upstream
        self._first = first
        self._include_usage = include_usage
        self._failed = failed
        self._started = started
        self._ttft = ttft
        self._prompt_chars = prompt_chars
        self._listeners = listeners
        self._clock = clock
        self._content_chars = 0
        self._finished = False
        self._closed = False

    async def _batches(self) -> AsyncIterator[list[Chunk]]:
        """Chunks in the groups they arrived in; raises UpstreamError if the stream breaks off."""
        status = 200
        error: UpstreamError | None = None
        try:
            if self._first:
                yield self._account(self._first)
            decoder = self._decoder
            while not decoder.done:
                try:
                    data = await anext(self._upstream)
                except StopAsyncIteration:
                    if self._finished:
                        break  # complete answer, the server just omitted [DONE]
                    raise UpstreamError(Outcome.RETRY_HERE, "upstream ended the stream before the answer was complete",
                                        reason="read") from None
                batch = decoder.feed(data)
                if batch:
                    yield self._account(batch)
        except TransportError as err:
            status, error = 502, transport_error(err)
            raise error from None
        except UpstreamError as err:
            status, error = 502, err
            raise
        except BaseException:
            status = 499  # cancelled: the client went away
            raise
        finally:
            self._response.close()
            self._record(status, error)

    def _account(self, batch: list[Chunk]) -> list[Chunk]:
        keep: list[Chunk] = []
        for chunk in batch:
            data = chunk[0]
            usage = data.get("usage")
            choices = data.get("choices")
            if usage is not None:
                self.usage = usage_from(usage) or self.usage
                if not choices and not self._include_usage:
                    continue  # we asked for it; the client did not
            if choices:
                first = choices[0]
                if isinstance(first, dict):
                    delta = first.get("delta")
                    if isinstance(delta, dict):
                        content = delta.get("content")
                        if isinstance(content, str):
                            self._content_chars += len(content)
                    if first.get("finish_reason"):
                        self._finished = True
            keep.append(chunk)
        return keep

    def _record(self, status: int, error: UpstreamError | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self.usage is None:
            self.usage = Usage(estimate_tokens(self._prompt_chars), estimate_tokens(self._content_chars), estimated=True)
        self.cost = self.usage.cost(self._dep.config.price)
        attempts = tuple(self._failed)
        if error is not None:
            message = redact(error.message, self._dep.endpoint.secrets)
            attempts += (Attempt(self._dep.id, error.outcome, message, error.upstream_status, error.reason),)
        emit(self._listeners, RequestRecord(
            request_id=self.request_id, operation="chat", model=self.model,
            deployment=self.deployment if error is None else None, status=status, attempts=attempts,
            latency=self._clock() - self._started, ttft=self._ttft, stream=True, usage=self.usage, cost=self.cost,
        ))

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._dicts()

    async def _dicts(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self._batches():
            for data, _raw in batch:
                yield data

    async def sse(self) -> AsyncIterator[bytes]:
        """The stream as server-sent-event bytes, ending in ``[DONE]`` or an error event."""
        batches = self._batches()
        try:
            async for batch in batches:
                parts = [b"data: %s\n\n" % (raw if raw is not None else orjson.dumps(data)) for data, raw in batch]
                yield parts[0] if len(parts) == 1 else b"".join(parts)
        except UpstreamError as err:
            message = redact(err.message, self._dep.endpoint.secrets)
            yield b"data: %s\n\n" % orjson.dumps({"error": {
                "message": f"The upstream stream from deployment '{self.deployment}' broke off: {message}",
                "type": "upstream_error", "param": None, "code": "stream_interrupted"}})
            return
        yield _DONE

    async def aclose(self) -> None:
        """Abandon the stream (closes the upstream connection)."""
        if not self._closed:
            self._response.close()
            self._record(499, None)
