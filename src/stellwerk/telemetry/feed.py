"""The dashboard's live feed: a listener turning finished requests and breaker changes into SSE events.

    RequestFinished, BreakerChanged ─► LiveFeed ─► every open ``GET /admin/events`` stream (bounded queues)
                                              ─► recent events (a ring, for a page that opens late)
                                              ─► a 15-minute timeline in 10-second buckets (the overview charts)

A config change (a new routing table version) is noticed on the next event or
heartbeat and sent as a ``config`` event. With no dashboard open a finished
request costs a few additions to the current bucket; the event's JSON is built
only for open streams. A stream that cannot keep up loses events (its queue is
bounded) rather than holding memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import orjson

from .events import BreakerChanged, Event, RequestFinished

__all__ = ["KINDS", "LiveFeed"]

KINDS: tuple[type[Event], ...] = (RequestFinished, BreakerChanged)
BUCKET = 10.0
"""Seconds per timeline bucket."""
BUCKETS = 90
"""Buckets kept: 15 minutes."""
_SAMPLES = 512
"""Latencies kept per bucket for p50/p99 (the first ones; enough for a chart)."""
_QUEUE = 1024
"""Events buffered per open stream."""
_STREAMS = 64
"""Open event streams at most."""
_RECENT = 200
_HEARTBEAT = 15.0
_CLOSE = b""


class Versioned(Protocol):
    """What the feed reads of the routing table (:class:`~stellwerk.routing.table.RoutingTable`): its version."""

    @property
    def version(self) -> int: ...


class _Bucket:
    __slots__ = ("cost", "errors", "latencies", "requests", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.requests = 0
        self.errors = 0
        self.cost = 0.0
        self.latencies: list[float] = []


class LiveFeed:
    """Subscribe to :class:`BreakerChanged` and :meth:`take` to finished-request batches (or the feed itself to
    :data:`KINDS`); serve :meth:`stream` as ``GET /admin/events`` and :meth:`timeline`."""

    def __init__(self, table: Callable[[], Versioned], *, wall_clock: Callable[[], float]) -> None:
        self._table = table
        self._clock = wall_clock
        self._buckets: deque[_Bucket] = deque(maxlen=BUCKETS)
        self._queues: set[asyncio.Queue[bytes]] = set()
        self._recent: deque[tuple[float, Event | dict[str, Any]]] = deque(maxlen=_RECENT)
        """The latest events with their times (newest last), for a page that opens after them; turned
        into JSON only when a page asks."""
        self._version = table().version
        self.dropped = 0
        """Events a slow stream did not get."""

    def __call__(self, event: Event) -> None:
        """One event: a breaker change (the gateway subscribes this to :class:`BreakerChanged`), or a finished
        request from a plain subscription (the gateway hands those over in batches, :meth:`take`)."""
        if type(event) is RequestFinished:
            self.take((event,))
        elif type(event) is BreakerChanged:
            now = self._clock()
            self._recent.append((now, event))
            if self._queues:
                self._check_version(now)
                self._send(_item(now, event))

    def take(self, records: Sequence[RequestFinished]) -> None:
        """A batch of finished requests (``events.subscribe_batches(feed.take)``), all stamped with one time."""
        now = self._clock()
        bucket = self._bucket(now)
        recent = self._recent
        latencies = bucket.latencies
        for record in records:
            bucket.requests += 1
            if record.status >= 500 or record.deployment is None:
                bucket.errors += 1
            bucket.cost += record.cost
            if len(latencies) < _SAMPLES:
                latencies.append(record.latency)
            recent.append((now, record))
        if self._queues:
            self._check_version(now)
            for record in records:
                self._send(_item(now, record))

    def recent(self) -> list[dict[str, Any]]:
        """The latest events as the stream sends them (oldest first)."""
        return [_item(now, event) for now, event in self._recent]

    def _bucket(self, now: float) -> _Bucket:
        """The timeline bucket ``now`` falls in (a new one when its 10 s began after the last one's)."""
        buckets = self._buckets
        start = now - now % BUCKET
        if not buckets or buckets[-1].start != start:
            buckets.append(_Bucket(start))
        return buckets[-1]

    def _check_version(self, now: float) -> None:
        version = self._table().version
        if version != self._version:
            self._version = version
            item = {"type": "config", "time": now, "version": version}
            self._recent.append((now, item))
            self._send(item)

    def _send(self, item: dict[str, Any]) -> None:
        data = b"event: %s\ndata: %s\n\n" % (item["type"].encode(), orjson.dumps(item))
        for queue in self._queues:
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                self.dropped += 1

    def timeline(self) -> dict[str, Any]:
        """Per bucket of the last 15 minutes: requests/s, error rate, p50 and p99 latency (s), cost (USD)."""
        now = self._clock()
        points = []
        for bucket in self._buckets:
            if bucket.start < now - BUCKETS * BUCKET:
                continue
            latencies = sorted(bucket.latencies)
            points.append({
                "start": bucket.start, "rps": bucket.requests / BUCKET,
                "error_rate": bucket.errors / bucket.requests if bucket.requests else 0.0,
                "p50": _quantile(latencies, 0.5), "p99": _quantile(latencies, 0.99), "cost": bucket.cost,
                "requests": bucket.requests})
        return {"bucket_s": BUCKET, "now": now, "points": points}

    @property
    def streams(self) -> int:
        return len(self._queues)

    def full(self) -> bool:
        return len(self._queues) >= _STREAMS

    def stream(self) -> AsyncIterator[bytes]:
        """Server-sent events: a ``hello`` with the config version and recent events, then live ones."""
        return _Stream(self)

    def close(self) -> None:
        """End every open stream (the gateway is shutting down)."""
        for queue in self._queues:
            try:
                queue.put_nowait(_CLOSE)
            except asyncio.QueueFull:
                queue.get_nowait()
                queue.put_nowait(_CLOSE)


class _Stream:
    """:meth:`LiveFeed.stream`: an async iterator class rather than an async generator (mypyc compiles classes,
    not async generators). Like the generator it replaces, it joins the feed at its first step and leaves it when
    it ends: the feed closed, an error, ``aclose``, or dropped unfinished."""

    def __init__(self, feed: LiveFeed) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[bytes] | None = None
        self._over = False

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        if self._over:
            raise StopAsyncIteration
        feed = self._feed
        try:
            queue = self._queue
            if queue is None:
                queue = self._queue = asyncio.Queue(_QUEUE)
                feed._queues.add(queue)
                feed._version = version = feed._table().version  # known to every open stream from here on
                hello = {"type": "hello", "time": feed._clock(), "version": version, "recent": feed.recent()}
                return b"event: hello\ndata: %s\n\n" % orjson.dumps(hello)
            try:
                data = await asyncio.wait_for(queue.get(), _HEARTBEAT)
            except TimeoutError:
                feed._check_version(feed._clock())
                return b": ping\n\n"
            if not data:  # the feed closed
                raise StopAsyncIteration
            return data
        except BaseException:
            self._close()
            raise

    def _close(self) -> None:
        self._over = True
        if self._queue is not None:
            self._feed._queues.discard(self._queue)

    async def aclose(self) -> None:
        self._close()

    def __del__(self) -> None:
        if not self._over:
            self._close()


def _item(now: float, event: Event | dict[str, Any]) -> dict[str, Any]:
    """An event as the stream's JSON."""
    if type(event) is RequestFinished:
        return {"type": "request", "time": now, "request_id": event.request_id, "model": event.model,
                "deployment": event.deployment, "status": event.status, "latency": event.latency, "ttft": event.ttft,
                "cost": event.cost, "attempts": event.upstream_attempts, "route": event.route,
                "failed": [a.deployment for a in event.attempts], "stream": event.stream}
    if type(event) is BreakerChanged:
        return {"type": "breaker", "time": now, "deployment": event.deployment, "old": event.old, "new": event.new}
    assert isinstance(event, dict)
    return event


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
