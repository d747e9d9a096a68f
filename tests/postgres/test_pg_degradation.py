"""PostgreSQL stops under a running gateway (a throwaway cluster, never the machine's server), then returns.

While it is down: requests with keys are served from memory, spend records wait in the journal, admin
writes and spend reads answer 503 ``store_unavailable``. When it is back: the journal is flushed (the
ledger holds one row per answer), admin writes work, and changes made elsewhere reach the gateway again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import psycopg
from keys_support import admin, start_governed
from pg_support import Cluster
from test_pg_replicas import _chat, _within, replica_config

from stellwerk.state.postgres import PostgresStore
from support import GUARD


def _rows(url: str, key_id: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as db:
            row = db.execute("SELECT COUNT(*) FROM stellwerk_spend WHERE key_id = %s", (key_id,)).fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row is not None else 0


async def test_the_gateway_degrades_while_postgresql_is_down_and_recovers(
        start_sim: Any, cluster: Cluster, tmp_path: Path) -> None:
    sim = await start_sim()
    gateway = await start_governed(replica_config(sim.base_url, cluster.url, tmp_path / "spend.journal"))
    try:
        assert gateway.governance is not None
        async with admin(gateway) as http:
            created = (await http.post("/admin/keys", json={"name": "k"})).json()
        secret, key_id = created["key"], created["id"]
        served = sum([await _chat(gateway, secret) == 200 for _ in range(3)])
        await asyncio.to_thread(cluster.stop, "immediate")

        down = [await _chat(gateway, secret) for _ in range(5)]
        assert down == [200] * 5  # the key is checked from memory; no request fails
        served += len(down)
        async with admin(gateway) as http:
            refused = await http.post("/admin/keys", json={"name": "later"})
            spend = await http.get("/admin/spend")
            weight = await http.put("/admin/deployments/a/weight", json={"weight": 2})
        assert refused.status_code == 503 and spend.status_code == 503
        error = refused.json()["error"]
        assert error["type"] == "store_unavailable" and error["code"] == "store_unavailable"
        assert "server.store" in error["message"] and "unreachable" in error["message"]
        assert spend.json()["error"]["type"] == "store_unavailable"
        assert weight.status_code == 503 and "not kept" in weight.json()["error"]["message"]
        assert await _within(GUARD, _waiting(gateway))  # the batches wait on disk

        await asyncio.to_thread(cluster.start)
        assert await _within(GUARD * 4, lambda: _stored(cluster.url, key_id, served))  # flushed after the outage
        assert gateway.governance.ledger.waiting == 0
        async with admin(gateway) as http:
            assert (await http.post("/admin/keys", json={"name": "later"})).status_code == 201
            rows = (await http.get("/admin/spend", params={"group_by": "key"})).json()["rows"]
        assert [r["requests"] for r in rows if r["key"] == key_id] == [served]

        elsewhere = PostgresStore(cluster.url)  # another replica revokes the key: heard after the reconnection
        keys, _ = await elsewhere.load()
        record = next(k for k in keys if k.id == key_id)
        await elsewhere.put_key(msgspec.structs.replace(record, revoked_at=1.0))
        await elsewhere.close()
        assert await _within(GUARD, lambda: _refused(gateway, secret))
    finally:
        await gateway.close(grace=1.0)


def _waiting(gateway: Any) -> Any:
    async def check() -> bool:
        return bool(gateway.governance.ledger.waiting)
    return check


async def _stored(url: str, key_id: str, expected: int) -> bool:
    return await asyncio.to_thread(_rows, url, key_id) == expected


async def _refused(gateway: Any, secret: str) -> bool:
    return await _chat(gateway, secret) == 401


