"""Redis is killed under load and started again: no request fails, and the limits become global again.

A redis-server of this test's own (the machine's is never stopped) and two gateway processes. While it is
down each replica enforces its share of the limits (half here); once it is back, the global window does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from replicas import Replica, poll, start_replicas

from redis_support import OwnRedis, free_port, needs_redis
from support import GUARD

pytestmark = needs_redis


def _config(redis: str, sim: Any) -> dict[str, Any]:
    def dep(id: str, **fields: Any) -> dict[str, Any]:
        return {"id": id, "provider": "openai", "model": "sim-model", "api_base": sim.base_url, **fields}

    return {"models": [{"name": "plain", "deployments": [dep("plain")]},
                       {"name": "limited", "deployments": [dep("rpm-10", rpm=10)]},
                       {"name": "limited-down", "deployments": [dep("rpm-10-down", rpm=10)]}],
            "server": {"redis": redis, "redis_timeout": GUARD, "shutdown_grace": 0.5}}  # killed: errors at once


async def test_redis_killed_under_load_fails_no_request(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    redis = OwnRedis(free_port())
    redis.start()
    replicas: list[Replica] = []
    try:
        await redis.ready()
        replicas = await start_replicas(tmp_path, [_config(redis.url, sim)] * 2)
        async with httpx.AsyncClient(timeout=GUARD) as http:
            async def state(replica: Replica) -> str:
                body = (await http.get(f"{replica.url}/admin/cluster")).json()
                return f"{body['redis']} {body['replicas_alive']}"  # both count both: the share is a half

            async def everywhere(wanted: str) -> bool:
                return all(s == wanted for s in await asyncio.gather(*(state(r) for r in replicas)))

            async def limited(replica: Replica, model: str) -> int:
                return (await http.post(f"{replica.url}/v1/chat/completions", json={
                    "model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})).status_code

            statuses: list[int] = []
            running = True

            async def load(replica: Replica) -> None:
                while running:
                    answer = await http.post(f"{replica.url}/v1/chat/completions", json={
                        "model": "plain", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})
                    statuses.append(answer.status_code)

            await poll(lambda: everywhere("up 2"), "both replicas reach Redis and see each other")
            clients = [asyncio.ensure_future(load(replicas[i % 2])) for i in range(4)]
            try:
                await poll(lambda: asyncio.sleep(0, len(statuses) > 20), "load is flowing")
                redis.kill()
                await poll(lambda: everywhere("down 2"), "both replicas notice that Redis is gone")
                seen = len(statuses)
                await poll(lambda: asyncio.sleep(0, len(statuses) > seen + 20), "load flows without Redis")
                down = [await limited(replicas[0], "limited-down") for _ in range(8)]
                assert down.count(200) == 5  # alone, this replica takes its share: 10 / 2 replicas
                redis.start()
                await redis.ready()
                await poll(lambda: everywhere("up 2"), "both replicas reconnect")
            finally:
                running = False
                await asyncio.gather(*clients)
            assert len(statuses) > 40 and set(statuses) == {200}

            answers = [await limited(replicas[0], "limited") for _ in range(15)]
            assert answers.count(200) == 10  # the global window (down, this replica's share was 5)
    finally:
        for replica in replicas:
            replica.stop()
        redis.kill()
