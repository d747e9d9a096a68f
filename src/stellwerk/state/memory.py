"""In-memory state: one process, bounded, on an injected clock."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence

from stellwerk.resilience.window import SlidingCounter

from .interfaces import CacheHit

__all__ = ["MemoryCache", "MemoryStateStore"]

Clock = Callable[[], float]


class MemoryStateStore:
    """Counters and key-value entries of this process. ``max_entries`` bounds the key-value part (LRU)."""

    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._counters: dict[tuple[str, int], SlidingCounter] = {}
        self._values: collections.OrderedDict[str, tuple[bytes, float]] = collections.OrderedDict()
        self._max = max_entries

    def counter(self, key: str, window: int) -> SlidingCounter:
        counter = self._counters.get((key, window))
        if counter is None:
            counter = self._counters[key, window] = SlidingCounter(self._clock, window)
        return counter

    async def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._values[key]
            return None
        self._values.move_to_end(key)
        return entry[0]

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._values[key] = (value, math.inf if ttl is None else self._clock() + ttl)
        self._values.move_to_end(key)
        while len(self._values) > self._max:
            self._values.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)


class _Entry:
    __slots__ = ("expires", "scope", "size", "value", "vector")

    def __init__(self, value: bytes, expires: float, scope: str, vector: tuple[float, ...] | None, norm: float) -> None:
        self.value = value
        self.expires = expires
        self.scope = scope
        self.vector = None if vector is None or norm == 0 else tuple(x / norm for x in vector)
        self.size = len(value) + 8 * len(vector or ()) + 64


class MemoryCache:
    """An LRU of answers bounded by bytes (values, vectors and a fixed overhead per entry); never over ``max_bytes``."""

    def __init__(self, clock: Clock, max_bytes: int = 64 << 20) -> None:
        self._clock = clock
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self.max_bytes = max_bytes
        self.bytes = 0

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def put(self, key: str, value: bytes, ttl: float, *, scope: str = "",
                  vector: Sequence[float] | None = None) -> None:
        norm = math.sqrt(sum(x * x for x in vector)) if vector is not None else 0.0
        entry = _Entry(value, self._clock() + ttl, scope, tuple(vector) if vector is not None else None, norm)
        self._drop(key)  # an older value of the key is stale either way
        if entry.size > self.max_bytes:
            return  # larger than the whole cache: not cached
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def nearest(self, vector: Sequence[float], *, scope: str, threshold: float) -> CacheHit | None:
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0:
            return None
        query = [x / norm for x in vector]
        now = self._clock()
        best: tuple[float, str] | None = None
        for key, entry in list(self._entries.items()):
            if entry.expires <= now:
                self._drop(key)
                continue
            if entry.scope != scope or entry.vector is None or len(entry.vector) != len(query):
                continue
            score = sum(a * b for a, b in zip(entry.vector, query, strict=True))
            if score >= threshold and (best is None or score > best[0]):
                best = (score, key)
        if best is None:
            return None
        self._entries.move_to_end(best[1])
        return CacheHit(self._entries[best[1]].value, best[0])

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
