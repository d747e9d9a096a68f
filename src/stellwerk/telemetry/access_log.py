"""The access log: one JSON line per finished request, a listener on :class:`RequestFinished`.

    {"time": "2026-12-03T21:20:25.123Z", "request_id": "…", "key_id": null, "operation": "chat",
     "model": "chat", "deployment": "primary", "attempts": 1, "status": 200, "latency_ms": 812.4,
     "ttft_ms": 95.1, "prompt_tokens": 12, "completion_tokens": 40, "cost_usd": 0.00042, "cache": null,
     "stream": true, "route": "failover: primary first"}

``server.access_log`` chooses the sink: ``stdout``, a file path (appended to) or
``off``. A line is a msgspec struct encoded into one in-memory buffer, which is
written out at most ``flush_interval`` seconds later, when it reaches 64 KiB,
and at close: a request costs one encoding, not a system call. Prompts and answers
are never in a line unless ``server.log_payloads`` is on; then the
:meth:`AccessLog.capture` middleware (pipeline stage ``tracing``) keeps them
until the request's line is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import msgspec

from stellwerk.pipeline import Call, Reply
from stellwerk.pipeline.chain import Handler

from .access_line import Line
from .events import Event, RequestFinished

__all__ = ["AccessLog", "Line", "open_sink"]

_MAX_PENDING_PAYLOADS = 4096
"""Requests whose payloads are held at most (requests in flight; a lost completion cannot grow it)."""
_BUFFER = 64 * 1024
"""Bytes of lines held before they are written out."""


def open_sink(target: str) -> IO[bytes] | None:
    """The file ``server.access_log`` names: stdout's buffer, a file opened for appending, or None for ``off``."""
    if target == "off":
        return None
    if target == "stdout":
        return sys.stdout.buffer
    return open(target, "ab", buffering=0)  # AccessLog buffers


class AccessLog:
    """``events.subscribe_batches(log.take)`` (or ``events.subscribe(log, RequestFinished)``); ``close()`` flushes
    (and closes a file it owns)."""

    def __init__(self, sink: IO[bytes], *, wall_clock: Callable[[], float], log_payloads: bool = False,
                 flush_interval: float = 0.5, owns_sink: bool = False) -> None:
        self._sink = sink
        self._buffer = bytearray()
        self._encode_into = msgspec.json.Encoder().encode_into
        self._wall_clock = wall_clock
        self._flush_interval = flush_interval
        self._owns = owns_sink
        self._flush_pending = False
        self.log_payloads = log_payloads
        self._payloads: dict[str, dict[str, Any]] = {}
        self._second = -1
        self._prefix = ""

    def _time(self, now: float) -> str:
        """ISO 8601 UTC with milliseconds (the date part is formatted once per second)."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = datetime.datetime.fromtimestamp(second, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{int((now - second) * 1000):03d}Z"

    def __call__(self, record: Event) -> None:
        """One event (a plain listener); the gateway hands the records over in batches (:meth:`take`)."""
        if type(record) is RequestFinished:
            self.take((record,))

    def take(self, records: Sequence[RequestFinished]) -> None:
        """A batch of finished requests (``events.subscribe_batches(access_log.take)``): one line each."""
        for record in records:
            self._line(record)
        if len(self._buffer) >= _BUFFER:
            self._drain()
        if not self._flush_pending:
            self._schedule_flush()

    def _line(self, record: RequestFinished) -> None:
        usage = record.usage
        ttft = record.ttft
        line = Line(time=self._time(self._wall_clock()), request_id=record.request_id, operation=record.operation,
                    model=record.model, deployment=record.deployment, attempts=record.upstream_attempts,
                    status=record.status, latency_ms=round(record.latency * 1000, 3),
                    ttft_ms=None if ttft is None else round(ttft * 1000, 3), prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens, cost_usd=record.cost, stream=record.stream,
                    route=record.route, key_id=record.key_id, cache=record.cache or None)
        if record.limited:
            line.limited = record.limited
        if record.attempts:
            line.failed = [f"{a.deployment}: {a.status or a.outcome.value}" for a in record.attempts]
        if self.log_payloads:
            payload = self._payloads.pop(record.request_id, None)
            if payload is not None:
                line.request = payload["request"]
                line.response = payload["response"]
        buffer = self._buffer
        self._encode_into(line, buffer, -1)
        buffer.append(10)

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop (a library user's thread): write through
            self.flush()
            return
        self._flush_pending = True
        loop.call_later(self._flush_interval, self.flush)

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or full sink must not fail requests
            self._sink.write(self._buffer)
        self._buffer.clear()

    def flush(self) -> None:
        self._flush_pending = False
        self._drain()
        with contextlib.suppress(OSError, ValueError):
            self._sink.flush()

    def close(self) -> None:
        self.flush()
        if self._owns:
            self._sink.close()

    async def capture(self, call: Call, next_handler: Handler) -> Reply:
        """Middleware (stage ``tracing``) keeping a call's prompt and answer for its line (``log_payloads``)."""
        if len(self._payloads) >= _MAX_PENDING_PAYLOADS:
            return await next_handler(call)
        body = call.body
        payload: dict[str, Any] = {"request": body.get("messages", body.get("input")), "response": None}
        self._payloads[call.request_id] = payload  # a failed call's line takes it too
        reply = await next_handler(call)

        def answered(_: RequestFinished) -> None:
            text = getattr(reply, "text", None)
            payload["response"] = text if isinstance(text, str) else None

        reply.on_complete(answered)  # before the router's own hook: the line is written after this
        return reply

