"""CPU per ADMIT round trip: the gateway's path (cluster/rounds.py), Stellwerk's own RESP client's generic
``call`` (cluster/resp.py), and redis-py's asyncio client.

One connection each, ``--calls`` sequential ADMIT script calls, one admission on one account (the machine's
Redis, a key of this run's own, deleted afterwards), process CPU time per call, ``--rounds`` rounds.

    .venv/bin/python bench/cluster/client.py [--calls 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import redis.asyncio as aioredis
import uvloop

from stellwerk.cluster import Cluster
from stellwerk.cluster.resp import connect
from stellwerk.cluster.rounds import Rounds, outcome
from stellwerk.cluster.scripts import ADMIT


async def main(url: str, calls: int, rounds: int) -> None:
    prefix = f"stellwerk-bench:{os.getpid()}:"
    node = Cluster(url, prefix=prefix, replica_id="bench")
    await node.start()
    gateway = Rounds(node)
    account = gateway.account("x", 1_000_000_000, 1_000_000_000)
    own = await connect(url, 1.0)
    other = aioredis.Redis.from_url(url)
    key = f"{prefix}w:x"
    # one admission of one account, no reconciliation (the layout of ARGV is in cluster/scripts.py)
    args = (ADMIT.sha, 1, key, int(time.time()), 0, 1, 1, 1_000_000_000, 1_000_000_000, 10)
    try:
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(calls):
                joined = gateway.join((account,), (10,))
                assert joined is not None
                assert outcome(await joined[0].future, joined[1]) is not None
            path = (time.process_time() - start) / calls * 1e6
            start = time.process_time()
            for _ in range(calls):
                await own.call("EVALSHA", *args)
            mine = (time.process_time() - start) / calls * 1e6
            start = time.process_time()
            for _ in range(calls):
                await other.evalsha(*args)
            theirs = (time.process_time() - start) / calls * 1e6
            print(f"ADMIT round trip, CPU µs: cluster/rounds.py {path:.1f}, cluster/resp.py call {mine:.1f}, "
                  f"redis-py {theirs:.1f}")
    finally:
        await own.call("DEL", key)
        own.close()
        await other.aclose()
        await node.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    uvloop.run(main(args.url, args.calls, args.rounds))
