"""Two gateways on one PostgreSQL store: keys, teams and stored responses are shared, changes reach the
other replica within 1 s (LISTEN/NOTIFY), and both ledgers, sharing one journal path, count every request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import psycopg
from keys_support import MASTER, admin, governed_config, start_governed

from stellwerk.gateway import Gateway
from support import GUARD

NOTICE = 1.0
"""The contract: a change made on one replica holds on every replica within this many seconds."""


async def _within(seconds: float, check: Any) -> bool:
    """Whether ``await check()`` becomes true within ``seconds`` (polled every 20 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return bool(await check())


def replica_config(api_base: str, pg_url: str, journal: Path) -> dict[str, Any]:
    data = governed_config(api_base, journal.parent / "unused.db")
    data["server"].update(store=pg_url, spend_journal=str(journal))
    return data


async def _chat(gateway: Gateway, key: str) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=GUARD) as http:
        response = await http.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                   json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    return response.status_code


async def test_replicas_share_keys_and_spend(start_sim: Any, fresh_pg: str, tmp_path: Path) -> None:
    sim = await start_sim()
    journal = tmp_path / "spend.journal"  # one path for both: each claims its own slot
    a = await start_governed(replica_config(sim.base_url, fresh_pg, journal))
    b = await start_governed(replica_config(sim.base_url, fresh_pg, journal))
    try:
        assert a.governance is not None and b.governance is not None
        assert {a.governance.ledger.path, b.governance.ledger.path} == {Path(f"{journal}.0"), Path(f"{journal}.1")}
        async with admin(a) as http:
            assert (await http.post("/admin/teams", json={"name": "ops"})).status_code == 201
            created = await http.post("/admin/keys", json={"name": "shared", "team": "ops"})
        assert created.status_code == 201
        secret, key_id = created.json()["key"], created.json()["id"]
        answers: list[int] = []  # every status, to count the answers served

        async def answers_on(gateway: Gateway, status: int) -> bool:
            answers.append(await _chat(gateway, secret))
            return answers[-1] == status

        assert await _within(NOTICE, lambda: answers_on(b, 200))
        async with admin(b) as http:
            assert [t["name"] for t in (await http.get("/admin/teams")).json()["data"]] == ["ops"]
        for _ in range(3):
            assert await answers_on(a, 200)
        async with admin(a) as http:
            assert (await http.delete(f"/admin/keys/{key_id}")).status_code == 200
        assert await _within(NOTICE, lambda: answers_on(b, 401))  # revoked everywhere
    finally:
        await a.close(grace=1.0)
        await b.close(grace=1.0)
    with psycopg.connect(fresh_pg) as db:
        row = db.execute("SELECT COUNT(*) FROM stellwerk_spend WHERE key_id = %s", (key_id,)).fetchone()
    assert row is not None and row[0] == answers.count(200)


async def test_stored_responses_continue_on_another_replica(start_sim: Any, fresh_pg: str, tmp_path: Path) -> None:
    sim = await start_sim()
    a = await start_governed(replica_config(sim.base_url, fresh_pg, tmp_path / "a.journal"))
    b = await start_governed(replica_config(sim.base_url, fresh_pg, tmp_path / "b.journal"))
    try:
        headers = {"authorization": f"Bearer {MASTER}"}
        async with httpx.AsyncClient(timeout=GUARD, headers=headers) as http:
            first = await http.post(f"http://127.0.0.1:{a.port}/v1/responses", json={"model": "chat", "input": "hi"})
            assert first.status_code == 200, first.text
            second = await http.post(f"http://127.0.0.1:{b.port}/v1/responses",
                                     json={"model": "chat", "input": "again", "previous_response_id": first.json()["id"]})
            assert second.status_code == 200, second.text
            unknown = await http.post(f"http://127.0.0.1:{b.port}/v1/responses",
                                      json={"model": "chat", "input": "x", "previous_response_id": "resp_nope"})
            assert unknown.status_code == 400
    finally:
        await a.close(grace=1.0)
        await b.close(grace=1.0)
