"""The interfaces the router's state sits behind.

``StateStore``: windowed counters (requests and tokens per minute, per
deployment, later per key and team) and a small key-value store with expiry.
Counters are read on the hot path, so ``Counter`` is synchronous: a shared
implementation keeps a local view and reconciles in the background. The
key-value store and the cache are asynchronous (a network round trip).

``Cache``: exact entries by key, and ``nearest`` for semantic lookups by an
embedding vector within a scope.

``KeyStore`` and ``SpendStore``: gateway keys and teams, and the spend ledger.
They are never used on the request path: keys are loaded into memory at start
and written through on change (admin API), spend records reach the store in
batches from a journal (:mod:`stellwerk.keys.ledger`). SQLite implements both
(:mod:`.sqlite`) and PostgreSQL (:mod:`.postgres`) implement both.

``Cache``: answers by exact key, and ``nearest`` for semantic lookups by an
embedding vector within a scope. Every entry belongs to a model, so that a
model's entries can be counted (:meth:`Cache.usage`) and flushed. A shared
cache that cannot answer now raises :class:`CacheUnavailable`: the caller
serves the request without it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol, runtime_checkable

import msgspec

from .records import KeyRecord, SpendRecord, SpendRow, TeamRecord

__all__ = ["Cache", "CacheHit", "CacheUnavailable", "CacheUsage", "Counter", "GroupBy", "KeyChanges", "KeyStore", "KeyValue",
           "SpendStore",
           "StateStore", "Store"]

GroupBy = Literal["key", "team", "model", "deployment"]


class Counter(Protocol):
    """The sum of what was added during the last ``window`` seconds."""

    def add(self, amount: int = 1) -> None: ...

    def total(self) -> int: ...

    def reset_in(self) -> float:
        """Seconds until the oldest amount still counted leaves the window (0 when nothing is counted)."""
        ...


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

class KeyStore(Protocol):
    """Keys and teams, durable. Keys are written with their hash only."""

    async def load(self) -> tuple[list[KeyRecord], list[TeamRecord]]:
        """Every key (revoked ones included) and every team."""
        ...

    async def put_key(self, key: KeyRecord) -> None:
        """Insert or replace the key with ``key.id``."""
        ...

    async def put_team(self, team: TeamRecord) -> None:
        """Insert or replace the team named ``team.name``."""
        ...

    async def close(self) -> None: ...


class SpendStore(Protocol):
    """The spend ledger: one :class:`SpendRecord` per finished request."""

    async def append(self, records: Sequence[SpendRecord]) -> None:
        """Add records; a record whose ``id`` is stored already is skipped (replays are idempotent)."""
        ...

    async def spend(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        """Requests, tokens and cost per group, of records with ``since <= time < until``."""
        ...

    async def count(self) -> int:
        """Records in the ledger."""
        ...


@runtime_checkable
class KeyValue(Protocol):
    """Values by key with expiry, durable and shared: a store that keeps stored responses (PostgreSQL)."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def delete(self, key: str) -> None: ...


@runtime_checkable
class KeyChanges(Protocol):
    """A shared store that tells of key and team changes made by other replicas (PostgreSQL)."""

    async def follow(self, changed: Callable[[KeyRecord | TeamRecord | None], Awaitable[None]]) -> None:
        """Until cancelled: ``changed(record)`` for every key or team changed anywhere, and ``changed(None)``
        whenever everything should be reloaded (after a (re)connection: changes may have been missed)."""
        ...


class Store(KeyStore, SpendStore, Protocol):
    """Keys, teams, the ledger and configuration versions in one place (``server.store``): SQLite or
    PostgreSQL."""

    def put_config_version_now(self, number: int, doc: bytes) -> None:
        """Keep a configuration version (admin path, not the request path)."""
        ...

    def latest_config_version_now(self) -> bytes | None:
        """The newest kept configuration version, if any."""
        ...

    path: str
    """Where it is (a file path for SQLite, ``:memory:``; a PostgreSQL URL without its password)."""
