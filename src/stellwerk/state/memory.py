"""In-memory state: one process, bounded, on an injected clock."""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from stellwerk.resilience.window import SlidingCounter

from .interfaces import CacheHit, CacheUsage

if TYPE_CHECKING:
    from .vectors import Index, Vector

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
    __slots__ = ("expires", "model", "scope", "size", "value", "vector")

    def __init__(self, value: bytes, expires: float, model: str, scope: str, vector: Vector | None) -> None:
        self.value = value
        self.expires = expires
        self.model = model
        self.scope = scope
        self.vector = vector
        self.size = len(value) + 8 * (0 if vector is None else len(vector)) + 64


class MemoryCache:
    """An LRU of answers bounded by bytes (values, vectors and a fixed overhead per entry); never over ``max_bytes``.

    Entries with a vector are also kept in one matrix per scope: :meth:`nearest` over 100,000 entries of
    a scope is one matrix-vector product (about a millisecond for 64 dimensions).
    """

    def __init__(self, clock: Clock, max_bytes: int = 64 << 20) -> None:
        self._clock = clock
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._indexes: dict[tuple[str, int], Index] = {}
        self._models: dict[str, CacheUsage] = {}
        self.max_bytes = max_bytes
        self.bytes = 0

    @property
    def available(self) -> bool:
        return True

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    async def put(self, key: str, value: bytes, ttl: float, *, model: str = "", scope: str = "",
                  vector: Sequence[float] | None = None) -> None:
        unit = None
        if vector is not None:
            from .vectors import unit_vector  # numpy, imported by the first semantic entry only

            unit = unit_vector(vector)
        entry = _Entry(value, self._clock() + ttl, model, scope, unit)
        self._drop(key)  # an older value of the key is stale either way
        if entry.size > self.max_bytes:
            return  # larger than the whole cache: not cached
        self._entries[key] = entry
        self.bytes += entry.size
        usage = self._models.get(model)
        if usage is None:
            usage = self._models[model] = CacheUsage()
        usage.entries += 1
        usage.bytes += entry.size
        if unit is not None:
            from .vectors import Index

            index = self._indexes.get((scope, len(unit)))
            if index is None:
                index = self._indexes[scope, len(unit)] = Index(len(unit))
            index.add(key, unit, entry.expires)
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def nearest(self, vector: Sequence[float], *, scope: str, threshold: float) -> CacheHit | None:
        if not self._indexes:
            return None
        from .vectors import unit_vector

        query = unit_vector(vector)
        if query is None:
            return None
        index = self._indexes.get((scope, len(query)))
        if index is None or not index.keys:
            return None
        score, key, stale = index.best(query, self._clock())
        for gone in stale:
            self._drop(gone)
        if score < threshold or key in stale:
            return None
        self._entries.move_to_end(key)
        return CacheHit(self._entries[key].value, score, key)

    async def flush(self, model: str | None = None) -> int:
        keys = list(self._entries) if model is None else [k for k, e in self._entries.items() if e.model == model]
        for key in keys:
            self._drop(key)
        return len(keys)

    async def usage(self) -> dict[str, CacheUsage]:
        now = self._clock()
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            self._drop(key)
        return {model: CacheUsage(u.entries, u.bytes) for model, u in self._models.items() if u.entries}

    async def close(self) -> None:
        return None

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        usage = self._models[entry.model]
        usage.entries -= 1
        usage.bytes -= entry.size
        if entry.vector is not None:
            index = self._indexes[entry.scope, len(entry.vector)]
            index.remove(key)
            if not index.keys:
                del self._indexes[entry.scope, len(entry.vector)]
