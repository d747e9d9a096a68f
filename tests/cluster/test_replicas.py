"""Three gateway processes sharing one Redis (the machine's, under a prefix of this module's own).

Limits hold globally (rpm exactly, tpm within a request), a breaker opened by one replica is applied by
the others, and a key revoked on one is refused by all. Waits poll with hang guards; nothing is timed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from replicas import Replica, poll, start_replicas

from redis_support import MACHINE_REDIS, needs_redis, own_prefix
from stellwerk.sim import Profile, SimProvider
from support import GUARD

pytestmark = [needs_redis, pytest.mark.asyncio(loop_scope="module")]

MASTER = "sk-master-0123456789abcdef"
ADMIN = {"authorization": f"Bearer {MASTER}"}
TPM = 6000
OUTPUT = 64


class Cluster:
    def __init__(self, replicas: list[Replica], sims: dict[str, SimProvider], key: str) -> None:
        self.replicas = replicas
        self.sims = sims
        self.key = key
        self.http = httpx.AsyncClient(timeout=GUARD)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"authorization": f"Bearer {key or self.key}"}

    async def chat(self, replica: Replica, model: str, key: str | None = None, **fields: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "Hello there"}], **fields}
        return await self.http.post(f"{replica.url}/v1/chat/completions", json=body, headers=self.auth(key))


def _config(sims: dict[str, SimProvider], prefix: str, folder: Path, i: int) -> dict[str, Any]:
    def dep(id: str, sim: str, **fields: Any) -> dict[str, Any]:
        return {"id": id, "provider": "openai", "model": "sim-model", "api_base": sims[sim].base_url, **fields}

    return {
        "models": [
            {"name": "limited", "deployments": [dep("rpm-120", "ok", rpm=120)]},
            {"name": "plain", "deployments": [dep("plain", "ok")]},
            {"name": "tokens", "deployments": [dep("tpm", "long", tpm=TPM)]},
            {"name": "flaky", "strategy": "failover", "retries": 0,
             "breaker": {"consecutive_failures": 2, "open_time": 60, "max_open_time": 60, "jitter": 0},
             "deployments": [dep("down", "down"), dep("spare", "ok")]},
        ],
        "server": {"redis": MACHINE_REDIS, "redis_prefix": prefix, "redis_timeout": GUARD, "master_key": MASTER,
                   "shutdown_grace": 0.5,
                   "store": f"sqlite:///{folder / f'store{i}.db'}"},
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    sims = {"ok": SimProvider(Profile()), "long": SimProvider(Profile(output_tokens=OUTPUT)),
            "down": SimProvider(Profile(error_rate=1.0, error_statuses=(503,)))}
    for sim in sims.values():
        await sim.start("127.0.0.1", 0)
    replicas: list[Replica] = []
    async for prefix in own_prefix():
        try:
            replicas = await start_replicas(folder, [_config(sims, prefix, folder, i) for i in range(3)])
            async with httpx.AsyncClient() as http:
                made = await http.post(f"{replicas[0].url}/admin/keys", json={"name": "user"}, headers=ADMIN)
            assert made.status_code == 201, made.text
            c = Cluster(replicas, sims, made.json()["key"])
            await poll(lambda c=c: _all_answer(c, c.key, 200), "the new key works on every replica")
            yield c
            await c.http.aclose()
        finally:
            for replica in replicas:
                replica.stop()
            for sim in sims.values():
                await sim.close(grace=0.5)


async def _all_answer(c: Cluster, key: str, status: int) -> bool:
    answers = await asyncio.gather(*(c.chat(r, "plain", key=key, max_tokens=1) for r in c.replicas))
    return all(a.status_code == status for a in answers)


async def test_replicas_see_each_other(cluster: Cluster) -> None:
    async def three() -> bool:
        body = (await cluster.http.get(f"{cluster.replicas[1].url}/admin/cluster", headers=ADMIN)).json()
        return body["redis"] == "up" and sum(1 for m in body["replicas"] if m["alive"]) == 3

    await poll(three, "/admin/cluster lists three live replicas")
    body = (await cluster.http.get(f"{cluster.replicas[0].url}/admin/cluster", headers=ADMIN)).json()
    member = body["replicas"][0]
    assert {"id", "version", "config_version", "heartbeat"} <= set(member)


async def test_deployment_rpm_holds_across_replicas(cluster: Cluster) -> None:
    before = cluster.sims["ok"].stats.requests
    turns = itertools.cycle(cluster.replicas)
    targets = [next(turns) for _ in range(600)]
    statuses: list[int] = []
    gate = asyncio.Semaphore(12)

    async def one(replica: Replica) -> None:
        async with gate:
            statuses.append((await cluster.chat(replica, "limited", max_tokens=1)).status_code)

    await asyncio.gather(*(one(r) for r in targets))
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}
    assert cluster.sims["ok"].stats.requests - before == admitted  # what was refused never went upstream
    assert 118 <= admitted <= 122, admitted


async def test_tpm_holds_under_concurrent_streams(cluster: Cluster) -> None:
    used: list[int] = []

    async def stream(replica: Replica) -> int:
        body = {"model": "tokens", "messages": [{"role": "user", "content": "Hello there"}], "stream": True,
                "max_tokens": OUTPUT, "stream_options": {"include_usage": True}}
        async with cluster.http.stream("POST", f"{replica.url}/v1/chat/completions", json=body,
                                       headers=cluster.auth()) as answer:
            if answer.status_code != 200:
                await answer.aread()
                assert answer.status_code == 429, answer.text
                return answer.status_code
            async for line in answer.aiter_lines():
                if line.startswith("data: {") and '"usage"' in line:
                    usage = json.loads(line[6:]).get("usage")
                    if usage:
                        used.append(int(usage["total_tokens"]))
            return 200

    gate = asyncio.Semaphore(9)

    async def flood(replica: Replica) -> int:
        async with gate:
            return await stream(replica)

    await asyncio.gather(*(flood(cluster.replicas[i % 3]) for i in range(2 * TPM // OUTPUT)))
    refusals = 0
    for i in itertools.count():  # then one at a time: nothing reserved in flight, the window is the judge
        refusals = refusals + 1 if await stream(cluster.replicas[i % 3]) == 429 else 0
        if refusals == 6:
            break
    assert abs(sum(used) - TPM) <= TPM * 0.02, (sum(used), len(used))


async def test_an_outage_seen_by_one_replica_stops_the_others(cluster: Cluster) -> None:
    first, others = cluster.replicas[0], cluster.replicas[1:]
    for _ in range(2):  # two failures on the first replica open its breaker (the spare answers)
        assert (await cluster.chat(first, "flaky", max_tokens=1)).status_code == 200

    async def opened(replica: Replica) -> bool:
        health = (await cluster.http.get(f"{replica.url}/admin/health", headers=ADMIN)).json()
        return bool(_breaker(health, "down") == "open")

    assert await opened(first)
    for replica in others:
        await poll(lambda r=replica: opened(r), f"{replica.url} applies the breaker opened elsewhere")
    before = cluster.sims["down"].stats.requests
    for replica in others:
        for _ in range(5):
            assert (await cluster.chat(replica, "flaky", max_tokens=1)).status_code == 200
    assert cluster.sims["down"].stats.requests == before  # nothing more was sent there


async def test_a_revoked_key_is_refused_by_every_replica(cluster: Cluster) -> None:
    made = await cluster.http.post(f"{cluster.replicas[0].url}/admin/keys", json={"name": "leaving"}, headers=ADMIN)
    key, key_id = made.json()["key"], made.json()["id"]
    await poll(lambda: _all_answer(cluster, key, 200), "the new key is accepted everywhere")
    revoked = await cluster.http.delete(f"{cluster.replicas[0].url}/admin/keys/{key_id}", headers=ADMIN)
    assert revoked.status_code == 200
    await poll(lambda: _all_answer(cluster, key, 401), "the revoked key is refused everywhere")


def _breaker(health: Any, dep_id: str) -> str | None:
    for model in health["models"].values():
        if dep_id in model["deployments"]:
            return str(model["deployments"][dep_id]["breaker"]["state"])
    return None


async def test_a_key_rpm_holds_across_replicas(cluster: Cluster) -> None:
    made = await cluster.http.post(f"{cluster.replicas[0].url}/admin/keys", json={"name": "metered", "rpm": 30},
                                   headers=ADMIN)
    key, key_id = made.json()["key"], made.json()["id"]

    async def known() -> bool:  # asked through the admin API, which counts no request against the key
        found = [await cluster.http.get(f"{r.url}/admin/keys/{key_id}", headers=ADMIN) for r in cluster.replicas]
        return all(f.status_code == 200 for f in found)

    await poll(known, "every replica knows the new key")
    answers = await asyncio.gather(*(cluster.chat(cluster.replicas[i % 3], "plain", key=key, max_tokens=1)
                                     for i in range(60)))
    statuses = [a.status_code for a in answers]
    assert statuses.count(200) == 30 and statuses.count(429) == 30
    refused = next(a for a in answers if a.status_code == 429).json()["error"]
    assert "30 requests per minute across all replicas" in refused["message"]


async def test_an_api_edit_on_one_replica_is_applied_by_all(cluster: Cluster) -> None:
    edited = await cluster.http.put(f"{cluster.replicas[0].url}/admin/deployments/spare/weight", json={"weight": 3},
                                    headers=ADMIN)
    assert edited.status_code == 200, edited.text

    async def everywhere() -> bool:
        for replica in cluster.replicas:
            shown = (await cluster.http.get(f"{replica.url}/admin/config", headers=ADMIN)).json()
            weights = {d["id"]: d["weight"] for m in shown["config"]["models"] for d in m["deployments"]}
            if weights["spare"] != 3:
                return False
        return True

    await poll(everywhere, "every replica runs the edited weight")
    shown = (await cluster.http.get(f"{cluster.replicas[1].url}/admin/config", headers=ADMIN)).json()
    assert shown["source"].startswith("cluster:")  # a version of its own, saying where the edit came from
