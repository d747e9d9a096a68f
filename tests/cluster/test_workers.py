"""``stellwerk serve --workers 2``: two processes on one port, limits exact across them without server.redis
(the supervisor's private redis-server on a unix socket)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from replicas import Replica, poll

from redis_support import needs_redis
from stellwerk.cluster.workers import worker_count
from stellwerk.errors import ConfigError
from support import GUARD

pytestmark = needs_redis


def test_worker_count_takes_a_number_or_auto() -> None:
    assert worker_count("3") == 3 and worker_count("auto") >= 1
    with pytest.raises(ConfigError, match="--workers: expected a number from 1 to 256 or 'auto', got 'many'"):
        worker_count("many")


async def test_two_workers_share_one_port_and_exact_limits(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    data = {"models": [{"name": "limited", "deployments": [
        {"id": "rpm-20", "provider": "openai", "model": "sim-model", "api_base": sim.base_url, "rpm": 20}]}],
        "server": {"shutdown_grace": 0.5, "redis_timeout": GUARD}}  # a slow answer of Redis is not its absence
    supervisor = Replica(tmp_path, "workers", data, args=("--workers", "2"))
    supervisor.start()
    try:
        await supervisor.ready()
        fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: the kernel spreads them
        async with httpx.AsyncClient(timeout=GUARD, limits=fresh) as http:
            async def two() -> bool:
                body = (await http.get(f"{supervisor.url}/admin/cluster")).json()
                return body["redis"] == "up" and body["replicas_alive"] == 2

            await poll(two, "both workers joined the private cluster")
            statuses = [(await http.post(f"{supervisor.url}/v1/chat/completions", json={
                "model": "limited", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1})).status_code
                for _ in range(40)]
        assert statuses.count(200) == 20 and statuses.count(429) == 20
        assert sim.stats.requests == 20
    finally:
        supervisor.stop()
    assert supervisor.proc is not None and supervisor.proc.returncode == 0
