"""Shared windows, heartbeats and degradation, in process, against the machine's Redis (own prefix, virtual wall)."""

from __future__ import annotations

import asyncio

import pytest
from virtual import Wall, never

from redis_support import MACHINE_REDIS, needs_redis
from stellwerk.cluster import Cluster, SharedLimits
from stellwerk.cluster.resp import ConnectionLost, RespError, connect
from stellwerk.state.records import KeyRecord
from support import GUARD

pytestmark = needs_redis


def cluster(prefix: str, wall: Wall, name: str) -> Cluster:
    return Cluster(MACHINE_REDIS, prefix=prefix, timeout=GUARD, wall=wall, clock=wall, sleep=never, replica_id=name)


async def test_resp_client_replies_errors_and_pipelining() -> None:
    conn = await connect(MACHINE_REDIS, GUARD)
    try:
        assert await conn.call("PING") == "PONG"
        replies = await asyncio.gather(*(conn.call("ECHO", f"m{i}") for i in range(50)))
        assert replies == [f"m{i}".encode() for i in range(50)]  # in order, pipelined on one connection
        with pytest.raises(RespError, match="unknown command"):
            await conn.call("NOSUCHCOMMAND")
        assert await conn.call("ECHO", b"\r\nbinary\x00") == b"\r\nbinary\x00"
    finally:
        conn.close()
    with pytest.raises(ConnectionLost):
        await conn.call("PING")


async def test_requests_are_admitted_exactly_up_to_the_limit_across_replicas(prefix: str) -> None:
    wall = Wall()
    a, b = cluster(prefix, wall, "a"), cluster(prefix, wall, "b")
    await a.start()
    await b.start()
    try:
        shared = [SharedLimits(a), SharedLimits(b)]
        results = await asyncio.gather(*(shared[i % 2].admit([("key:k", 10, None, 0)]) for i in range(25)))
        assert sum(1 for r in results if r is not None and r[1] is None) == 10
        wall.now += 61  # the window has passed
        assert (await shared[0].admit([("key:k", 10, None, 0)]) or (0, "x"))[1] is None
    finally:
        await a.close()
        await b.close()


async def test_tokens_are_reserved_then_reconciled(prefix: str) -> None:
    wall = Wall()
    a = cluster(prefix, wall, "a")
    await a.start()
    try:
        shared = SharedLimits(a)
        admitted = await shared.admit([("team:t", None, 1000, 600)])
        assert admitted is not None and admitted[1] is None
        refused = await shared.admit([("team:t", None, 1000, 600)])
        assert refused is not None and refused[1] is None  # 600 < 1000: admitted, now 1200 reserved
        full = await shared.admit([("team:t", None, 1000, 1)])
        assert full is not None and full[1] is not None and full[1].tokens == 1200
        shared.reconcile(["team:t"], admitted[0], -500)  # the answers used 100 tokens each
        shared.reconcile(["team:t"], admitted[0], -500)
        again = await shared.admit([("team:t", None, 1000, 1)])
        assert again is not None and again[1] is None
    finally:
        await a.close()


async def test_heartbeats_count_replicas_and_limits_split_while_redis_is_down(prefix: str) -> None:
    wall = Wall()
    nodes = [cluster(prefix, wall, f"r{i}") for i in range(3)]
    for node in nodes:
        await node.start()
    try:
        await nodes[0]._beat()
        assert nodes[0].replicas == 3
        members = await nodes[0].members()
        assert {m["id"] for m in members} == {"r0", "r1", "r2"} and all(m["alive"] for m in members)
        shared = SharedLimits(nodes[0])
        key = KeyRecord(id="k1", name="k", hash="h", rpm=90, tpm=3000)
        assert shared.local_view(key) is key  # Redis up: the global windows apply
        nodes[0].down(ConnectionLost("test"))
        view = shared.local_view(key)
        assert (view.rpm, view.tpm) == (30, 1000)  # a third each while Redis is down
        assert await shared.admit([("key:k1", 90, None, 0)]) is None  # nothing is sent
        await nodes[0]._beat()  # the heartbeat reconnects
        assert nodes[0].up and shared.local_view(key) is key
    finally:
        for node in nodes:
            await node.close()


async def test_the_response_cache_lives_in_server_redis_unless_told_otherwise() -> None:
    from stellwerk import load_dict
    from stellwerk.compose import build_cache
    from stellwerk.state.memory import MemoryCache
    from stellwerk.state.redis import RedisCache

    def cache_of(server: dict[str, object]) -> object:
        return build_cache(load_dict({"models": [{"name": "m", "deployments": [
            {"id": "d", "provider": "openai", "model": "x", "api_base": "http://127.0.0.1:9"}]}], "server": server}),
            Wall())

    shared, local, memory = (cache_of({"redis": MACHINE_REDIS}), cache_of({}),
                             cache_of({"redis": MACHINE_REDIS, "cache": {"backend": "memory"}}))
    try:
        assert isinstance(shared, RedisCache) and isinstance(local, MemoryCache) and isinstance(memory, MemoryCache)
    finally:
        for cache in (shared, local, memory):
            await cache.close()  # type: ignore[attr-defined]
