"""The interfaces the router's state sits behind.

``StateStore``: windowed counters (requests and tokens per minute, per
deployment, later per key and team) and a small key-value store with expiry.
Counters are read on the hot path, so ``Counter`` is synchronous: a shared
implementation keeps a local view and reconciles in the background. The
key-value store and the cache are asynchronous (a network round trip).

``Cache``: answers by exact key, and ``nearest`` for semantic lookups by an
embedding vector within a scope. Every entry belongs to a model, so that a
model's entries can be counted (:meth:`Cache.usage`) and flushed. A shared
cache that cannot answer now raises :class:`CacheUnavailable`: the caller
serves the request without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

__all__ = ["Cache", "CacheHit", "CacheUnavailable", "CacheUsage", "Counter", "StateStore"]


class Counter(Protocol):
    """The sum of what was added during the last ``window`` seconds."""

    def add(self, amount: int = 1) -> None: ...

    def total(self) -> int: ...


class StateStore(Protocol):
    def counter(self, key: str, window: int) -> Counter:
        """The counter named ``key`` (the same object for the same key and window)."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, forgotten after ``ttl`` seconds (kept when None)."""
        ...

    async def delete(self, key: str) -> None: ...


class CacheHit(msgspec.Struct, frozen=True):
    value: bytes
    score: float
    """1.0 for an exact hit; the similarity for a semantic one."""
    key: str = ""
    """The entry's key."""


class CacheUsage(msgspec.Struct):
    """What one model's entries take: how many, and their bytes (as the backend counts them)."""

    entries: int = 0
    bytes: int = 0


class CacheUnavailable(Exception):
    """A shared cache cannot answer now (its server is unreachable or slow): serve without it."""


class Cache(Protocol):
    @property
    def available(self) -> bool:
        """False while a shared cache is known to be unreachable (its calls would raise CacheUnavailable)."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float, *, model: str = "", scope: str = "",
                  vector: Sequence[float] | None = None) -> None:
        """Store an answer of ``model``; with ``vector`` it can also be found by :meth:`nearest` within ``scope``."""
        ...

    async def nearest(self, vector: Sequence[float], *, scope: str, threshold: float) -> CacheHit | None:
        """The most similar entry of ``scope`` scoring at least ``threshold`` (cosine), or None."""
        ...

    async def flush(self, model: str | None = None) -> int:
        """Forget every entry (of ``model`` when given); returns how many were forgotten."""
        ...

    async def usage(self) -> dict[str, CacheUsage]:
        """Entries and bytes per model."""
        ...

    async def close(self) -> None:
        """Release connections (nothing for an in-process cache)."""
        ...
