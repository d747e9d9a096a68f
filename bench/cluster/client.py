"""CPU per ADMIT round trip: Stellwerk's own RESP client (cluster/resp.py) versus redis-py's asyncio client.

One connection each, ``--calls`` sequential EVALSHA calls of the ADMIT script on one account (the machine's
Redis, a key of this run's own, deleted afterwards), process CPU time per call, ``--rounds`` rounds.

    .venv/bin/python bench/cluster/client.py [--calls 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time

import redis.asyncio as aioredis
import uvloop

from stellwerk.cluster.resp import connect
from stellwerk.cluster.scripts import ADMIT


async def main(url: str, calls: int, rounds: int) -> None:
    own = await connect(url, 1.0)
    other = aioredis.Redis.from_url(url)
    key = f"stellwerk-bench:{os.getpid()}:a:x"
    await own.call("SCRIPT", "LOAD", ADMIT.source)
    args = (ADMIT.sha, 1, key, int(time.time()), 1_000_000_000, 1_000_000_000, 10)
    try:
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(calls):
                await own.call("EVALSHA", *args)
            mine = (time.process_time() - start) / calls * 1e6
            start = time.process_time()
            for _ in range(calls):
                await other.evalsha(*args)
            theirs = (time.process_time() - start) / calls * 1e6
            print(f"ADMIT round trip, CPU µs: cluster/resp.py {mine:.1f}, redis-py {theirs:.1f}")
    finally:
        await own.call("DEL", key)
        own.close()
        await other.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    uvloop.run(main(args.url, args.calls, args.rounds))
