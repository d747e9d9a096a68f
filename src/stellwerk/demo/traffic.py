"""The demo's client: chat requests over HTTP through the gateway, at a steady rate.

Requests leave on a fixed schedule (``rps`` per second, open loop) while fewer
than ``concurrency`` are in flight; past that the schedule waits instead of
queueing an ever-growing backlog. A share of the requests are streamed. Each
finished request becomes one :class:`ClientResult`, judged as a client would:
a complete answer is HTTP 200 with a parseable body, or, for a stream, SSE
events ending in ``[DONE]`` with no error event.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import orjson

from stellwerk.http.client import HTTPClient, TransportError
from stellwerk.providers.sse import SSEParser

__all__ = ["ClientResult", "LoadGenerator"]

_PROMPTS = (
    "Which platform does the 08:15 to Basel leave from?",
    "Summarise today's delays on line S3 in two sentences.",
    "Write a haiku about a signal box at dawn.",
    "Explain interlocking to a five-year-old.",
    "Translate 'the train is late' into German.",
    "List three ways to route around a closed track.",
)


@dataclass(frozen=True, slots=True)
class ClientResult:
    started: float
    """Seconds since the demo started when the request was sent."""
    latency: float
    """Seconds to the last byte as the client saw it."""
    ttft: float | None
    """Seconds to the first content chunk (streams only)."""
    stream: bool
    ok: bool
    status: int
    """HTTP status (0 when the connection failed)."""
    deployment: str | None
    """From the gateway's ``x-stellwerk-deployment`` header."""
    attempts: int
    """From ``x-stellwerk-attempts``: upstream attempts including the one that answered."""
    error: str | None = None


class LoadGenerator:
    """Sends chat requests to ``base_url`` (the gateway's ``.../v1``) until stopped."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        rps: float,
        concurrency: int,
        stream_share: float,
        seed: int,
        on_result: Callable[[ClientResult], None],
        clock: Callable[[], float],
        client: HTTPClient | None = None,
    ) -> None:
        if rps <= 0 or concurrency < 1 or not 0.0 <= stream_share <= 1.0:
            raise ValueError("rps must be > 0, concurrency >= 1 and stream_share in 0..1")
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._interval = 1.0 / rps
        self._slots = asyncio.Semaphore(concurrency)
        self._stream_share = stream_share
        self._rng = random.Random(seed)
        self._on_result = on_result
        self._clock = clock
        self._client = client or HTTPClient()
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        """Send on schedule until ``stop`` is set; then wait up to 5 s for answers in flight."""
        next_at = self._clock()
        while not stop.is_set():
            delay = next_at - self._clock()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            await self._slots.acquire()
            if stop.is_set():
                self._slots.release()
                break
            task = asyncio.create_task(self._one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self.sent += 1
            next_at = max(next_at + self._interval, self._clock() - self._interval)
        await self.drain(5.0)

    async def drain(self, grace: float) -> None:
        """Wait ``grace`` seconds for requests in flight, then cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def close(self) -> None:
        await self.drain(0.0)
        await self._client.close()

    def _body(self, stream: bool) -> bytes:
        request: dict[str, object] = {
            "model": self._model,
            "messages": [{"role": "user", "content": self._rng.choice(_PROMPTS)}],
            "max_tokens": self._rng.randint(16, 48),
        }
        if stream:
            request["stream"] = True
        return orjson.dumps(request)

    async def _one(self) -> None:
        try:
            stream = self._rng.random() < self._stream_share
            started = self._clock()
            status, deployment, attempts, ttft, error = 0, None, 0, None, None
            try:
                response = await self._client.request(
                    "POST", self._url, [("content-type", "application/json")], self._body(stream), timeout=60.0
                )
                status = response.status
                deployment = response.headers.get("x-stellwerk-deployment")
                attempts = int(response.headers.get("x-stellwerk-attempts", "0") or 0)
                if stream and status == 200:
                    ttft, error = await _read_stream(response.iter_chunks(idle_timeout=60.0), self._clock, started)
                else:
                    error = _check_body(status, await response.read(timeout=60.0))
            except TransportError as err:
                error = f"{type(err).__name__}: {err}"
            self._on_result(ClientResult(
                started=started, latency=self._clock() - started, ttft=ttft, stream=stream, ok=error is None,
                status=status, deployment=deployment, attempts=attempts, error=error,
            ))
        finally:
            self._slots.release()


def _check_body(status: int, body: bytes) -> str | None:
    """None for a complete chat answer, else what is wrong with it."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"HTTP {status}: unparseable body"
    if status != 200:
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return f"HTTP {status}: {message or 'error'}"
    if not isinstance(data, dict) or not data.get("choices"):
        return "HTTP 200 without choices"
    return None


async def _read_stream(
    chunks: AsyncIterator[bytes], clock: Callable[[], float], started: float
) -> tuple[float | None, str | None]:
    """(ttft, error) for an SSE body: complete when it ends in ``[DONE]`` without an error event."""
    parser = SSEParser()
    ttft: float | None = None
    done = False
    async for chunk in chunks:
        for _, data in parser.feed(chunk):
            if data == b"[DONE]":
                done = True
                continue
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                return ttft, "unparseable stream event"
            if "error" in event:
                return ttft, f"stream error: {event['error'].get('message', 'unknown')}"
            if ttft is None and event.get("choices"):
                ttft = clock() - started
    return ttft, None if done else "stream ended without [DONE]"
