"""The in-memory state seams on an injected clock: ``MemoryStateStore`` (windowed counters, key-value entries with
expiry, an LRU bound) and ``MemoryCache`` (bounded by bytes, LRU, expiry, ``nearest`` by scope and threshold).
"""

from __future__ import annotations

import math

import pytest
from resilience_support import VirtualTime

from stellwerk.state import CacheHit, MemoryCache, MemoryStateStore


# -- MemoryStateStore ------------------------------------------------------------------------------------------------
def test_counters_sum_their_window_on_the_injected_clock(vtime: VirtualTime) -> None:
    store = MemoryStateStore(vtime)
    rpm = store.counter("rpm:a", 60)
    assert store.counter("rpm:a", 60) is rpm and store.counter("rpm:a", 10) is not rpm
    rpm.add()
    vtime.advance(30)
    rpm.add(4)
    assert rpm.total() == 5
    vtime.advance(30)
    assert rpm.total() == 4  # the first add is 60 s old: out of the window
    vtime.advance(30)
    assert rpm.total() == 0


async def test_values_expire_after_their_ttl(vtime: VirtualTime) -> None:
    store = MemoryStateStore(vtime)
    await store.put("short", b"1", ttl=10)
    await store.put("forever", b"2")
    vtime.advance(9.9)
    assert await store.get("short") == b"1"
    vtime.advance(0.1)
    assert await store.get("short") is None
    vtime.advance(1e6)
    assert await store.get("forever") == b"2"
    await store.delete("forever")
    await store.delete("never-there")
    assert await store.get("forever") is None


async def test_the_store_keeps_the_most_recently_used_entries(vtime: VirtualTime) -> None:
    store = MemoryStateStore(vtime, max_entries=2)
    await store.put("a", b"a")
    await store.put("b", b"b")
    assert await store.get("a") == b"a"  # a is now the most recently used
    await store.put("c", b"c")
    assert [await store.get(k) for k in "abc"] == [b"a", None, b"c"]


# -- MemoryCache -----------------------------------------------------------------------------------------------------
async def entry_size(value: bytes, vector: list[float] | None = None) -> int:
    """What one entry costs in a cache (measured, not assumed)."""
    probe = MemoryCache(lambda: 0.0)
    await probe.put("k", value, 60, vector=vector)
    return probe.bytes


async def test_the_cache_never_exceeds_max_bytes(vtime: VirtualTime) -> None:
    cache = MemoryCache(vtime, max_bytes=4096)
    for i in range(500):
        await cache.put(f"k{i}", b"x" * (i % 97), 60, vector=[1.0, float(i)] if i % 3 else None)
        assert 0 < cache.bytes <= cache.max_bytes
    assert await cache.get("k499") is not None and await cache.get("k0") is None


async def test_the_cache_evicts_the_least_recently_used(vtime: VirtualTime) -> None:
    size = await entry_size(b"v" * 40)
    cache = MemoryCache(vtime, max_bytes=3 * size)
    for key in "abc":
        await cache.put(key, b"v" * 40, 60)
    assert await cache.get("a") is not None  # a becomes the most recently used
    await cache.put("d", b"v" * 40, 60)  # evicts b, the least recently used
    assert await cache.get("b") is None and cache.bytes == 3 * size
    await cache.put("e", b"v" * 40, 60)  # evicts c (order now: a, d, e)
    assert [await cache.get(k) is not None for k in "acde"] == [True, False, True, True]
    assert cache.bytes == 3 * size


async def test_cache_entries_expire(vtime: VirtualTime) -> None:
    cache = MemoryCache(vtime)
    await cache.put("k", b"answer", 5, scope="s", vector=[1.0, 0.0])
    vtime.advance(4.9)
    assert await cache.get("k") == b"answer"
    vtime.advance(0.1)
    assert await cache.get("k") is None and cache.bytes == 0
    await cache.put("v", b"answer", 5, scope="s", vector=[1.0, 0.0])
    vtime.advance(5)
    assert await cache.nearest([1.0, 0.0], scope="s", threshold=0.0) is None and cache.bytes == 0


async def test_nearest_respects_scope_and_threshold_and_returns_the_best(vtime: VirtualTime) -> None:
    cache = MemoryCache(vtime)
    await cache.put("far", b"far", 60, scope="s", vector=[0.0, 1.0])
    await cache.put("near", b"near", 60, scope="s", vector=[2.0, 0.2])  # length does not matter: cosine
    await cache.put("mid", b"mid", 60, scope="s", vector=[1.0, 1.0])
    await cache.put("exact-elsewhere", b"other", 60, scope="t", vector=[1.0, 0.0])
    await cache.put("no-vector", b"plain", 60, scope="s")
    hit = await cache.nearest([1.0, 0.0], scope="s", threshold=0.5)
    assert hit is not None and hit.value == b"near"
    assert hit.score == pytest.approx(2.0 / math.hypot(2.0, 0.2))
    assert await cache.nearest([1.0, 0.0], scope="t", threshold=0.5) == CacheHit(b"other", pytest.approx(1.0), "exact-elsewhere")
    assert await cache.nearest([1.0, 0.0], scope="s", threshold=0.999) is None
    assert await cache.nearest([1.0, 0.0], scope="u", threshold=0.0) is None
    assert await cache.nearest([0.0, 0.0], scope="s", threshold=0.0) is None
    assert await cache.nearest([1.0, 0.0, 0.0], scope="s", threshold=0.0) is None  # other dimensions


async def test_an_entry_larger_than_the_cache_is_not_stored(vtime: VirtualTime) -> None:
    size = await entry_size(b"s" * 10)
    cache = MemoryCache(vtime, max_bytes=size + 10)
    await cache.put("small", b"s" * 10, 60)
    await cache.put("huge", b"h" * (size + 11), 60)
    assert await cache.get("huge") is None
    assert await cache.get("small") == b"s" * 10 and cache.bytes == size  # nothing was evicted for it


async def test_a_value_too_large_for_the_cache_removes_the_older_value_of_its_key(vtime: VirtualTime) -> None:
    size = await entry_size(b"s" * 10)
    cache = MemoryCache(vtime, max_bytes=size + 10)
    await cache.put("k", b"s" * 10, 60)
    await cache.put("k", b"h" * (size + 11), 60)
    assert await cache.get("k") is None  # the old answer is stale: never served for the new one
    assert cache.bytes == 0
