"""Leases: allowances granted by the ADMIT script, spent locally, given back; against the machine's Redis
(own prefix, virtual wall; expiry is swept by hand)."""

from __future__ import annotations

import asyncio
from typing import Any

from virtual import Wall, never

from redis_support import MACHINE_REDIS, needs_redis
from stellwerk.cluster import Cluster, SharedLimits
from stellwerk.cluster.leases import LEASE
from stellwerk.cluster.resp import ConnectionLost, connect
from stellwerk.cluster.rounds import Account, Rounds
from support import GUARD

pytestmark = needs_redis

T0 = 1_000_000


async def started(prefix: str, wall: Wall, name: str, replicas: int = 1) -> tuple[Cluster, SharedLimits]:
    node = Cluster(MACHINE_REDIS, prefix=prefix, timeout=GUARD, wall=wall, clock=wall, sleep=never, replica_id=name)
    await node.start()
    node.replicas = replicas  # as if the heartbeat had seen them
    return node, SharedLimits(node)


async def ask(rounds: Rounds, accounts: list[Account], wants: list[int], needs: list[int]) -> tuple[int, Any]:
    """One admission's answer from the script."""
    told: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
    assert rounds.join(accounts, wants, needs, lambda at, reply: told.set_result((at, reply)))
    async with asyncio.timeout(GUARD):
        return await told


async def hold(shared: SharedLimits, wall: Wall, accounts: list[Account], used: int) -> None:
    """Use ``accounts`` ``used`` times in one second (a quiet account asks exactly), then once in the next:
    that ask is for ``used``, so ``used - 1`` are left in hand (far from the limits)."""
    for _ in range(used):
        assert (await shared.leases.draw(accounts, [0] * len(accounts)))[1] == 0
    wall.now += 1
    assert (await shared.leases.draw(accounts, [0] * len(accounts)))[1] == 0


async def window(prefix: str, name: str) -> tuple[int, int]:
    """An account's requests and tokens in the window, as Redis has them."""
    conn = await connect(MACHINE_REDIS, GUARD)
    try:
        r, t = await conn.call("HMGET", f"{prefix}w:{name}", "R", "T")
        return int(r or 0), int(t or 0)
    finally:
        conn.close()


async def test_grants_shrink_near_the_limit_and_never_exceed_it(prefix: str) -> None:
    node, shared = await started(prefix, Wall(), "a", replicas=3)
    try:
        rounds = shared.rounds
        account = rounds.account("dep:d", 120, 1000)
        grants: list[tuple[int, int]] = []
        while True:
            at, reply = await ask(rounds, [account], [64], [30])
            assert at == T0 and isinstance(reply, list)  # never all 64: a sixth of what is left at most
            if reply[0]:
                break
            grants.append((reply[1], reply[2]))
        requests, tokens = [g[0] for g in grants], [g[1] for g in grants]
        assert requests[0] == 20 and tokens[0] == 166  # (120 - 0) / (2 * 3), (1000 - 0) / 6
        assert requests == sorted(requests, reverse=True) and tokens == sorted(tokens, reverse=True)
        assert min(tokens) == 30  # near the limit: exactly the request's own tokens
        assert sum(tokens) < 1000 + 30  # never further past tpm than one request's need
        assert reply[1:] == [sum(requests), sum(tokens)] == list(await window(prefix, "dep:d"))

        rpm = rounds.account("key:k", 120, None)
        granted = 0
        while True:
            _, reply = await ask(rounds, [rpm], [64], [0])
            if isinstance(reply, list) and reply[0]:
                break
            granted += reply[1]
            assert reply[1] >= 1
        assert granted == 120 and reply == [1, 120, 0]  # every request of the minute, not one more
        assert (await ask(rounds, [rounds.account("key:free", None, None)], [64], [10]))[1] == 0  # as asked
    finally:
        await node.close()


async def test_requests_taken_locally_make_no_round_trip(prefix: str) -> None:
    wall = Wall()
    node, shared = await started(prefix, wall, "a")
    try:
        key, dep = shared.rounds.account("key:k", 1000, 100_000), shared.rounds.account("dep:d", 1000, 100_000)
        for _ in range(4):  # a quiet account asks exactly: one round trip each
            assert (await shared.leases.draw([key, dep], [10, 10]))[1:] == (0, 0, 0)
        assert shared.rounds.sent == 4
        wall.now += 1  # used 4 times in the previous second: asks for 4
        for _ in range(4):
            assert await shared.leases.draw([key, dep], [10, 10]) == ([T0 + 1, T0 + 1], 0, 0, 0)
            assert shared.rounds.sent == 5  # the first asked; the next three took theirs here
        assert await window(prefix, "key:k") == (8, 80)
        shared.leases.settle(key.key, T0 + 1, 0, -5)  # an answer used 5 tokens less: kept here
        assert shared.leases.allowance(key.key).tokens == 5
        assert shared.rounds.sent == 5 and await window(prefix, "key:k") == (8, 80)
    finally:
        await node.close()


async def test_unused_allowance_goes_back_on_expiry_and_another_replica_takes_it(prefix: str) -> None:
    wall = Wall()
    (a, first), (b, second) = await started(prefix, wall, "a", 2), await started(prefix, wall, "b", 2)
    try:
        account = [first.rounds.account("key:k", 40, None)]
        await hold(first, wall, account, 4)
        assert first.leases.allowance(account[0].key).requests == 3
        other = [second.rounds.account("key:k", 40, None)]
        admitted = 0
        while (await second.leases.draw(other, [0]))[1] == 0:
            admitted += 1
        assert admitted == 32 and await window(prefix, "key:k") == (40, 0)  # 3 held, unused, by the first
        wall.now += LEASE
        first.leases.sweep()  # expired: given back
        await first.rounds.flush()
        assert await window(prefix, "key:k") == (37, 0)
        while (await second.leases.draw(other, [0]))[1] == 0:
            admitted += 1
        assert admitted == 35  # every request of the minute was admitted in the end
    finally:
        await a.close()
        await b.close()


async def test_a_refused_round_gives_back_the_local_takes(prefix: str) -> None:
    wall = Wall()
    (a, first), (b, second) = await started(prefix, wall, "a"), await started(prefix, wall, "b")
    try:
        key, dep = first.rounds.account("key:k", 1000, None), first.rounds.account("dep:d", 2, None)
        await hold(first, wall, [key], 3)
        assert first.leases.allowance(key.key).requests == 2
        for _ in range(2):  # the other replica fills the deployment
            assert (await second.leases.draw([second.rounds.account("dep:d", 2, None)], [0]))[1] == 0
        ats, full, requests, _ = await first.leases.draw([key, dep], [0, 0])
        assert (ats, full, requests) == ([-1, -1], 2, 2)  # the deployment is full: nothing counted
        assert first.leases.allowance(key.key).requests == 2  # the key's local take went back
        assert await window(prefix, "key:k") == (6, 0)
    finally:
        await a.close()
        await b.close()


async def test_changed_limits_give_the_allowance_back(prefix: str) -> None:
    wall = Wall()
    node, shared = await started(prefix, wall, "a")
    try:
        old = [shared.rounds.account("key:k", 100, None)]
        await hold(shared, wall, old, 5)
        assert shared.leases.allowance(old[0].key).requests == 4 and await window(prefix, "key:k") == (10, 0)
        new = [shared.rounds.account("key:k", 8, None)]  # the key's rpm lowered: the allowance is not used
        assert await shared.leases.draw(new, [0]) == ([T0 + 1], 0, 0, 0)
        assert await window(prefix, "key:k") == (7, 0)  # 4 given back with the ask, which got 1
        assert (await shared.leases.draw(new, [0]))[1] == 0  # 7 < 8: one more
        assert (await shared.leases.draw(new, [0]))[1:] == (1, 8, 0)  # then full
    finally:
        await node.close()


async def test_redis_down_mid_lease_spends_the_allowance_until_it_expires(prefix: str) -> None:
    wall = Wall()
    node, shared = await started(prefix, wall, "a")
    try:
        account = [shared.rounds.account("dep:d", 100, None)]
        await hold(shared, wall, account, 3)  # 2 in hand
        sent = shared.rounds.sent
        node.down(ConnectionLost("test"))
        assert await shared.leases.draw(account, [0]) == ([T0 + 1], 0, 0, 0)  # spent without Redis
        assert shared.rounds.sent == sent
        wall.now += 0.5
        await node._beat()  # reconnected: what was held on the lost connection is neither spent nor given back
        assert node.up
        assert await shared.leases.draw(account, [0]) == ([T0 + 1], 0, 0, 0)
        assert shared.rounds.sent == sent + 1 and await window(prefix, "dep:d") == (9, 0)  # asked 3 anew
        node.down(ConnectionLost("test"))
        wall.now += LEASE
        assert (await shared.leases.draw(account, [0]))[1] == -1  # expired: the local fallback applies
    finally:
        await node.close()


async def test_a_cancelled_request_leaves_its_round_alone_and_its_grant_is_kept(prefix: str) -> None:
    wall = Wall()
    node, shared = await started(prefix, wall, "a")
    try:
        account = [shared.rounds.account("key:k", 100, None)]
        for _ in range(5):
            await shared.leases.draw(account, [0])
        wall.now += 1  # used 5 times in the second before
        first = asyncio.ensure_future(shared.leases.draw(account, [0]))  # goes alone, asks for 5
        others = [asyncio.ensure_future(shared.leases.draw(account, [0])) for _ in range(2)]  # the next round
        await asyncio.sleep(0)
        first.cancel()
        async with asyncio.timeout(GUARD):
            assert [(await o)[1] for o in others] == [0, 0]
        assert shared.leases.allowance(account[0].key).requests == 4  # the cancelled one's grant, kept
    finally:
        await node.close()


async def test_a_cancelled_admission_leaves_the_others_of_its_round_alone(prefix: str) -> None:
    """Found under wrk load: a client that went away while its admission shared a round with others ended
    them too and broke the round's reply (one future for the round). Each admission now waits alone."""
    wall = Wall()
    node, shared = await started(prefix, wall, "a")
    try:
        account = [shared.rounds.account("key:quiet", 100, None)]  # unused: every draw asks for one
        draws = [asyncio.ensure_future(shared.leases.draw(account, [0])) for _ in range(4)]  # 1 alone, 3 together
        await asyncio.sleep(0)
        draws[2].cancel()  # in the middle of the shared round
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(*draws, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        assert [r[1] for r in results if isinstance(r, tuple)] == [0, 0, 0]
        assert node.up
        async with asyncio.timeout(GUARD):
            assert (await shared.leases.draw(account, [0]))[1] == 0
    finally:
        await node.close()
