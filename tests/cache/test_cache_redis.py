"""The Redis backend: against the machine's Redis (own key prefix, cleaned up), two gateway processes sharing hits,
and a Redis of our own that is killed and restarted (the machine's is never stopped).

Redis timeouts are hang guards (``GUARD``): a killed Redis fails at once (refused, reset), while a slow answer on a
loaded machine is not an outage."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis.asyncio as aioredis

from redis_support import MACHINE_REDIS, OwnRedis, free_port, needs_redis, own_prefix
from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.state import CacheUnavailable
from stellwerk.state.redis import RedisCache
from support import GUARD, USER, config, deployment, model

STELLWERK = [sys.executable, "-m", "stellwerk.cli"]

pytestmark = needs_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async for name in own_prefix():
        yield name


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(free_port())
    server.start()
    yield server
    server.kill()


# -- the backend against the machine's Redis ----------------------------------------------------------------------------
async def test_get_put_usage_and_flush(prefix: str) -> None:
    cache = RedisCache(MACHINE_REDIS, clock=Clock(), prefix=prefix, timeout=GUARD)
    try:
        await cache.put("a", b"answer a", 60, model="m1")
        await cache.put("b", b"answer b", 60, model="m1")
        await cache.put("c", b"answer c", 60, model="m2")
        assert await cache.get("a") == b"answer a" and await cache.get("zzz") is None
        usage = await cache.usage()
        assert usage["m1"].entries == 2 and usage["m2"].entries == 1 and usage["m1"].bytes > 16
        assert await cache.flush("m1") == 2
        assert await cache.get("a") is None and await cache.get("c") == b"answer c"
        assert set(await cache.usage()) == {"m2"}
        assert await cache.flush() == 1 and await cache.usage() == {}
    finally:
        await cache.close()


async def test_redis_expires_entries_by_their_ttl(prefix: str) -> None:
    wall = Clock()
    cache = RedisCache(MACHINE_REDIS, clock=Clock(), prefix=prefix, wall=wall, timeout=GUARD)
    client = aioredis.Redis.from_url(MACHINE_REDIS)
    try:
        await cache.put("k", b"v", 60, model="m")
        assert 59_000 <= await client.pttl(prefix + "e:k") <= 60_000  # Redis forgets the entry by itself
        wall.now += 61
        assert await cache.usage() == {}  # the model's index forgets it when read
    finally:
        await client.aclose()
        await cache.close()


async def test_semantic_lookups_read_entries_from_redis(prefix: str) -> None:
    cache = RedisCache(MACHINE_REDIS, clock=Clock(), prefix=prefix, timeout=GUARD)
    try:
        await cache.put("k", b"v", 60, model="m", scope="s", vector=[1.0, 0.0])
        hit = await cache.nearest([1.0, 0.1], scope="s", threshold=0.9)
        assert hit is not None and hit.value == b"v" and hit.key == "k"
        assert await cache.nearest([0.0, 1.0], scope="s", threshold=0.9) is None
        await cache.flush("m")
        assert await cache.nearest([1.0, 0.1], scope="s", threshold=0.9) is None  # gone in Redis: dropped here
    finally:
        await cache.close()


# -- two gateway processes share hits -----------------------------------------------------------------------------------
async def start_process(path: Path) -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(*STELLWERK, "serve", "--config", str(path), "--port", "0",
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        line = (await proc.stdout.readline()).decode()
    match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    return proc, int(match.group(1))


async def test_two_gateway_processes_share_hits(prefix: str, start_upstream: Any, tmp_path: Path) -> None:
    upstream = await start_upstream()
    path = tmp_path / "stellwerk.yaml"
    path.write_text(f"""\
server:
  cache: {{backend: redis, url: "{MACHINE_REDIS}", prefix: "{prefix}", timeout: {GUARD}}}
models:
  - name: chat
    cache: {{mode: exact, scope: global}}
    deployments:
      - {{id: up, provider: openai, model: up, api_base: "{upstream.base_url}"}}
""")
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(2):
            proc, port = await start_process(path)
            procs.append(proc)
            client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0,
                                        timeout=GUARD * 2)
            async with client:
                raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
                procs_headers = dict(raw.headers)
            if len(procs) == 1:
                assert procs_headers["x-stellwerk-cache"] == "miss"
            else:
                assert procs_headers["x-stellwerk-cache"] == "hit" and procs_headers["x-stellwerk-cost"] == "0"
        assert upstream.count == 1
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    async with asyncio.timeout(GUARD * 2):
                        await proc.wait()
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


# -- Redis killed: requests keep being served -----------------------------------------------------------------------------
async def test_with_redis_killed_requests_are_served_and_caching_resumes(own_redis: OwnRedis, start_upstream: Any,
                                                                          make_client: Any) -> None:
    await own_redis.ready()
    clock = Clock()
    upstream = await start_upstream()
    data = config(model("chat", deployment("up", upstream.base_url), cache={"mode": "exact"}),
                  cache={"backend": "redis", "url": own_redis.url, "retry_after": 5, "timeout": GUARD})
    gateway = Gateway(load_dict(data, env={}), clock=clock)
    await gateway.start("127.0.0.1", 0)
    try:
        client = make_client(gateway)

        async def cache_header(headers: dict[str, str] | None = None) -> str:
            raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER,
                                                                         extra_headers=headers or {})
            assert raw.parse().choices[0].message.content == "Hello from upstream"
            return str(raw.headers["x-stellwerk-cache"])

        assert [await cache_header(), await cache_header()] == ["miss", "hit"]
        own_redis.kill()
        assert [await cache_header() for _ in range(3)] == ["bypass"] * 3  # served, without the cache
        assert await cache_header({"x-stellwerk-cache": "no-cache"}) == "bypass"  # would write: cannot
        assert upstream.count == 5
        assert gateway.router.response_cache is not None
        assert (await gateway.router.response_cache.snapshot())["available"] is False
        own_redis.start()  # back (empty: nothing was persisted)
        await own_redis.ready()
        assert await cache_header() == "bypass"  # still within retry_after: Redis is not asked yet
        clock.now += 5
        assert [await cache_header(), await cache_header()] == ["miss", "hit"]
        assert upstream.count == 7
    finally:
        await gateway.close(grace=1.0)


async def test_an_unreachable_redis_fails_fast_and_is_retried_after_a_while() -> None:
    clock = Clock()
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", clock=clock, retry_after=2)
    try:
        with pytest.raises(CacheUnavailable):
            await cache.get("k")
        assert not cache.available
        with pytest.raises(CacheUnavailable):
            await cache.put("k", b"v", 60)  # not even tried
        clock.now += 2
        assert cache.available
    finally:
        await cache.close()


async def test_replicas_find_each_others_semantic_entries(prefix: str) -> None:
    clock = Clock()
    one = RedisCache(MACHINE_REDIS, clock=clock, prefix=prefix, timeout=GUARD)
    two = RedisCache(MACHINE_REDIS, clock=clock, prefix=prefix, timeout=GUARD)
    try:
        await one.put("k1", b"v1", 60, model="m", scope="s", vector=[1.0, 0.0])
        hit = await two.nearest([1.0, 0.1], scope="s", threshold=0.9)
        assert hit is not None and (hit.key, hit.value) == ("k1", b"v1")
        await two.put("k2", b"v2", 60, model="m", scope="s", vector=[0.0, 1.0])
        hit = await one.nearest([0.1, 1.0], scope="s", threshold=0.9)
        assert hit is not None and hit.key == "k2"
        assert await one.nearest([1.0, 0.0], scope="other", threshold=0.9) is None
        await one.flush()
        assert await two.nearest([1.0, 0.1], scope="s", threshold=0.9) is None
    finally:
        await one.close()
        await two.close()


async def test_two_gateways_on_redis_share_semantic_hits(prefix: str, start_upstream: Any, make_client: Any) -> None:
    upstream = await start_upstream()
    data = config(model("chat", deployment("up", upstream.base_url), cache={"mode": "semantic", "scope": "global"}),
                  cache={"backend": "redis", "url": MACHINE_REDIS, "prefix": prefix, "timeout": GUARD})
    gateways = [Gateway(load_dict(data, env={})) for _ in range(2)]
    try:
        for gateway in gateways:
            await gateway.start("127.0.0.1", 0)
        first, second = (make_client(g) for g in gateways)
        raw = await first.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "convert 100 USD to EUR"}])
        assert raw.headers["x-stellwerk-cache"] == "miss"
        raw = await second.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Convert 100 USD to EUR please"}])
        assert raw.headers["x-stellwerk-cache"] == "semantic-hit" and upstream.count == 1
    finally:
        for gateway in gateways:
            await gateway.close(grace=1.0)
