"""Rounds: admissions that meet while one is in flight share one ADMIT; reconciliations ride along; deadlines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from virtual import Wall, never

from redis_support import MACHINE_REDIS, OwnRedis, free_port, needs_redis
from stellwerk.cluster import Cluster, SharedLimits
from stellwerk.cluster.resp import ConnectionLost, connect
from support import GUARD

pytestmark = needs_redis


async def test_admissions_that_meet_in_flight_share_the_next_round(prefix: str) -> None:
    node = Cluster(MACHINE_REDIS, prefix=prefix, timeout=GUARD, wall=Wall(), sleep=never, replica_id="a")
    await node.start()
    try:
        rounds = SharedLimits(node).rounds
        key, dep = rounds.account("key:k", 3, None), rounds.account("dep:d", None, 1000)
        told: list[tuple[int, Any]] = []
        heard = asyncio.Event()

        def answer(at: int, reply: Any) -> None:
            told.append((at, reply))
            heard.set()

        async def until(n: int) -> None:
            async with asyncio.timeout(GUARD):
                while len(told) < n:
                    heard.clear()
                    await heard.wait()

        assert all(rounds.join((key, dep), (1, 1), (100, 100), answer) for _ in range(5))
        assert rounds.sent == 1  # the first went alone, at once; the other four wait for it
        await until(5)
        assert rounds.sent == 2  # ... and then shared one round
        assert told == [(1_000_000, 0)] * 3 + [(1_000_000, [1, 3, 300])] * 2  # in order: the key's rpm 3, then full
        for _ in range(3):
            rounds.reconcile(key.key, 1_000_000, 0, -60)  # each answer took 40 tokens
        assert rounds.join((dep,), (1,), (0,), answer)
        await until(6)
        assert told[5] == (1_000_000, 0)
        conn = await connect(MACHINE_REDIS, 1.0)
        try:  # the reconciliations rode with that round
            assert await conn.call("HGET", f"{prefix}w:key:k", "t1000000") == b"120"
            assert await conn.call("HGET", f"{prefix}w:dep:d", "r1000000") == b"4"
        finally:
            conn.close()
    finally:
        await node.close()


async def test_a_reconciliation_alone_goes_out_after_a_short_delay(prefix: str) -> None:
    node = Cluster(MACHINE_REDIS, prefix=prefix, timeout=GUARD, wall=Wall(), sleep=never, replica_id="a")
    await node.start()
    conn = await connect(MACHINE_REDIS, 1.0)
    try:
        shared = SharedLimits(node)
        shared.reconcile(["team:t"], 1_000_000, 25)
        async with asyncio.timeout(GUARD):
            while await conn.call("HGET", f"{prefix}w:team:t", "t1000000") != b"25":
                await asyncio.sleep(0.01)  # the flush is due after FLUSH_DELAY (bounded by GUARD)
    finally:
        conn.close()
        await node.close()


async def test_a_restarted_redis_without_the_script_gets_it_sent_again() -> None:
    redis = OwnRedis(free_port())
    redis.start()
    try:
        await redis.ready()
        node = Cluster(redis.url, timeout=GUARD, wall=Wall(), sleep=never, replica_id="a")
        await node.start()
        try:
            conn = await connect(redis.url, 1.0)
            try:
                await conn.call("SCRIPT", "FLUSH")  # this test's own server: as if it had restarted
            finally:
                conn.close()
            assert await SharedLimits(node).admit([("key:k", 5, None, 1)]) == (1_000_000, None)
            assert node.up
        finally:
            await node.close()
    finally:
        redis.kill()


async def test_a_silent_server_fails_every_waiting_command_at_the_deadline() -> None:
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)  # reads the commands, never answers
        await done.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        conn = await connect(f"redis://127.0.0.1:{port}/0", 0.1)
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(conn.call("PING"), conn.call("PING"), return_exceptions=True)
        assert all(isinstance(r, ConnectionLost) and "no answer within 0.1s" in str(r) for r in results)
        with pytest.raises(ConnectionLost):
            await conn.call("PING")
    finally:
        done.set()
        server.close()
        await server.wait_closed()


async def test_the_window_slides_second_by_second(prefix: str) -> None:
    wall = Wall()
    node = Cluster(MACHINE_REDIS, prefix=prefix, timeout=GUARD, wall=wall, sleep=never, replica_id="a")
    await node.start()
    try:
        shared = SharedLimits(node)
        subject = [("key:s", 3, 1000, 10)]
        assert [await shared.admit(subject) for _ in range(2)] == [(1_000_000, None)] * 2
        wall.now += 30
        assert await shared.admit(subject) == (1_000_030, None)
        refused = await shared.admit(subject)
        assert refused is not None and refused[1] is not None and (refused[1].requests, refused[1].tokens) == (3, 30)
        shared.reconcile(["key:s"], 1_000_000, -4)  # the first two answers took 8 tokens: rides with the next
        wall.now += 29
        refused = await shared.admit(subject)
        assert refused is not None and refused[1] is not None and (refused[1].requests, refused[1].tokens) == (3, 26)
        wall.now += 1  # second 1_000_000 leaves the window (t-60, t]
        assert await shared.admit(subject) == (1_000_060, None)
        refused = await shared.admit([("key:s", 2, 1000, 10)])
        assert refused is not None and refused[1] is not None and (refused[1].requests, refused[1].tokens) == (2, 20)
        wall.now += 60  # a minute without use: the window starts over
        assert [await shared.admit([("key:s", 2, 1000, 10)]) for _ in range(2)] == [(1_000_120, None)] * 2
        refused = await shared.admit([("key:s", 2, 1000, 10)])
        assert refused is not None and refused[1] is not None and (refused[1].requests, refused[1].tokens) == (2, 20)
    finally:
        await node.close()
