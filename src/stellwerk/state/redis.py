"""The response cache in Redis: shared by every gateway replica that names the same server and prefix.

Keys (``P`` is the prefix, ``stellwerk:cache:`` by default)::

    P e:<key>       the entry's bytes, expiring after its ttl (Redis forgets it by itself)
    P m:<model>     sorted set: the model's keys, scored by their expiry (ms since the epoch)
    P s:<model>     hash: the model's keys and their sizes (for ``usage``; pruned with ``m``)
    P v:<scope>     stream: a semantic scope's vectors (key, expiry, float32 bytes), at most MAX_VECTORS

Redis bounds its memory itself (``maxmemory`` with an eviction policy); the model indexes only serve
``usage`` and ``flush`` and are pruned when read.

**Faults.** Every command has a deadline (``timeout``). When Redis does not answer, the command raises
:class:`~stellwerk.state.CacheUnavailable` and the cache stays *down* for ``retry_after`` seconds:
during that time nothing is sent to Redis at all (requests are served without the cache, at no extra
latency), and its connections are dropped. Then the next command tries again (a connection that broke
meanwhile is reconnected once at once); when it succeeds, the cache is back::

    up ──command fails──► down ──retry_after passed──► (next command) ──ok──► up
                            ▲                                         └─fails─► down

**Semantic lookups** use an index of vectors in this process. A replica that stores a semantic entry
also appends its vector to the scope's stream in Redis; before a lookup, a replica reads what was
appended since its last look (one round trip), so every replica finds every replica's entries. The
entries themselves are read from Redis (one that is gone there is dropped from the index).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .interfaces import CacheHit, CacheUnavailable, CacheUsage
from .vectors import Index, Vector, unit_vector

__all__ = ["RedisCache"]

T = TypeVar("T")

MAX_VECTORS = 100_000
"""Vectors kept per semantic scope in Redis (the oldest go first)."""
SYNC_BATCH = 10_000
"""Vectors read from a scope's stream per lookup at most (the rest on the next ones)."""
Clock = Callable[[], float]


class RedisCache:
    """A :class:`~stellwerk.state.Cache` in Redis; ``clock`` times the down state, ``wall`` the index scores."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, clock: Clock, prefix: str = "stellwerk:cache:",
                 timeout: float = 0.25, retry_after: float = 1.0, wall: Clock = time.time) -> None:
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1),
            retry_on_timeout=False, health_check_interval=0)
        self._prefix = prefix
        self._clock = clock
        self._wall = wall
        self._timeout = timeout
        self._retry_after = retry_after
        self._down_until = -math.inf
        self._indexes: dict[tuple[str, int], Index] = {}
        self._indexed: dict[str, tuple[str, int]] = {}
        self._seen: dict[str, str] = {}
        """The last stream entry read per scope."""

    @property
    def available(self) -> bool:
        """False while the cache is down (after a failure, for ``retry_after`` seconds)."""
        return self._clock() >= self._down_until

    async def _run(self, command: Callable[[], Awaitable[T]]) -> T:
        if self._clock() < self._down_until:
            raise CacheUnavailable("redis is down")
        try:
            return await asyncio.wait_for(command(), self._timeout * 2)
        except (TimeoutError, RedisError, OSError) as err:
            self._down_until = self._clock() + self._retry_after
            with contextlib.suppress(RedisError, OSError):
                await self._redis.connection_pool.disconnect()  # no stale connection outlives the failure
            raise CacheUnavailable(f"redis: {err}") from None

    async def get(self, key: str) -> bytes | None:
        value = await self._run(lambda: self._redis.get(self._prefix + "e:" + key))
        return value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes, ttl: float, *, model: str = "", scope: str = "",
                  vector: Sequence[float] | None = None) -> None:
        p = self._prefix
        ms = max(1, int(ttl * 1000))
        expires = int(self._wall() * 1000) + ms
        size = len(value) + len(key) + 64

        unit = unit_vector(vector) if vector is not None else None

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.set(p + "e:" + key, value, px=ms)
                pipe.zadd(p + "m:" + model, {key: expires})
                pipe.hset(p + "s:" + model, key, size)
                if unit is not None:  # other replicas read it from the scope's stream
                    pipe.xadd(p + "v:" + scope, {"k": key, "x": expires, "v": unit.tobytes()},
                              maxlen=MAX_VECTORS, approximate=True)
                    pipe.pexpire(p + "v:" + scope, ms, gt=True)
                    pipe.pexpire(p + "v:" + scope, ms, nx=True)
                await pipe.execute()

        await self._run(write)
        if unit is not None:
            self._index(key, scope, unit, self._clock() + ttl)

    def _index(self, key: str, scope: str, unit: Vector, expires: float) -> None:
        self._unindex(key)
        index = self._indexes.get((scope, len(unit)))
        if index is None:
            index = self._indexes[scope, len(unit)] = Index(len(unit))
        index.add(key, unit, expires)
        self._indexed[key] = (scope, len(unit))

    async def _sync(self, scope: str) -> None:
        """Add what other replicas stored in ``scope`` since the last look (one round trip)."""
        stream = self._prefix + "v:" + scope
        seen = self._seen.get(scope)
        start = "-" if seen is None else "(" + seen
        added: Any = await self._run(lambda: self._redis.xrange(stream, start, "+", count=SYNC_BATCH))
        now, wall = self._clock(), self._wall() * 1000
        for entry_id, fields in added or ():
            self._seen[scope] = entry_id.decode()
            expires = now + (int(fields[b"x"]) - wall) / 1000
            if expires > now:
                self._index(fields[b"k"].decode(), scope, np.frombuffer(fields[b"v"], dtype=np.float32), expires)

    async def nearest(self, vector: Sequence[float], *, scope: str, threshold: float) -> CacheHit | None:
        query = unit_vector(vector)
        if query is None:
            return None
        await self._sync(scope)
        index = self._indexes.get((scope, len(query)))
        if index is None or not index.keys:
            return None
        score, key, stale = index.best(query, self._clock())
        for gone in stale:
            self._unindex(gone)
        if score < threshold or key in stale:
            return None
        value = await self.get(key)
        if value is None:
            self._unindex(key)  # flushed or evicted in Redis
            return None
        return CacheHit(value, score, key)

    def _unindex(self, key: str) -> None:
        where = self._indexed.pop(key, None)
        if where is not None:
            index = self._indexes[where]
            index.remove(key)
            if not index.keys:
                del self._indexes[where]

    async def _models(self) -> list[str]:
        pattern = self._prefix + "m:*"
        names: list[str] = []
        async for name in self._redis.scan_iter(match=pattern, count=500):
            names.append((name.decode() if isinstance(name, bytes) else name)[len(self._prefix) + 2:])
        return names

    async def _prune(self, model: str) -> None:
        p = self._prefix
        now = int(self._wall() * 1000)
        expired = await self._redis.zrangebyscore(p + "m:" + model, "-inf", now)
        if expired:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrem(p + "m:" + model, *expired)
                pipe.hdel(p + "s:" + model, *expired)
                await pipe.execute()

    async def usage(self) -> dict[str, CacheUsage]:
        async def read() -> dict[str, CacheUsage]:
            out: dict[str, CacheUsage] = {}
            for model in await self._models():
                await self._prune(model)
                sizes = await self._redis.hvals(self._prefix + "s:" + model)
                if sizes:
                    out[model] = CacheUsage(len(sizes), sum(int(s) for s in sizes))
            return out

        return await self._run(read)

    async def flush(self, model: str | None = None) -> int:
        p = self._prefix

        async def forget() -> int:
            models = [model] if model is not None else await self._models()
            count = 0
            for name in models:
                await self._prune(name)
                keys = [k.decode() if isinstance(k, bytes) else str(k)
                        for k in await self._redis.zrange(p + "m:" + name, 0, -1)]
                for start in range(0, len(keys), 500):
                    batch = [p + "e:" + k for k in keys[start:start + 500]]
                    count += await self._redis.delete(*batch)
                await self._redis.delete(p + "m:" + name, p + "s:" + name)
            if model is None:  # entries whose index was lost, and the vector streams: forget them too
                async for stray in self._redis.scan_iter(match=p + "e:*", count=500):
                    count += await self._redis.delete(stray)
                async for stream in self._redis.scan_iter(match=p + "v:*", count=500):
                    await self._redis.delete(stream)
            return count

        count = await self._run(forget)
        if model is None:
            for key in list(self._indexed):
                self._unindex(key)
            self._seen.clear()
        return count  # one model's vectors here are dropped on their next lookup (gone in Redis)

    async def close(self) -> None:
        await self._redis.aclose()
