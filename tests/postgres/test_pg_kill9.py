"""kill -9 of one of two replicas on a PostgreSQL store, under load: the ledger holds every completed answer.

Two ``stellwerk serve`` processes share the store and one journal path (each claims its own slot).
Clients spread over both count the answers they received completely. One replica is killed with SIGKILL
mid-load and started again (it claims the dead one's free slot and stores what its journal holds); the
clients go on, then both replicas stop gracefully and the spend rows are counted in PostgreSQL.
A request whose answer the kill cut may or may not have its row (it was journaled before its last byte,
which may not have arrived), so the rows are the completed answers plus at most the requests the clients
saw cut (at most the killed replica's requests in flight): exactly the completed answers when none was.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import yaml
from keys_support import MASTER, PRICE
from test_kill9 import _free_port, _serve, chat_once

from support import GUARD

CLIENTS = 8
"""Clients, half on each replica."""


async def test_kill_9_of_a_replica_loses_no_completed_answer(start_sim: Any, fresh_pg: str, tmp_path: Path) -> None:
    sim = await start_sim()
    config = tmp_path / "stellwerk.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "sim-model",
                                                      "api_base": sim.base_url, "price": PRICE}]}],
        "server": {"master_key": MASTER, "store": fresh_pg, "spend_journal": str(tmp_path / "spend.journal"),
                   "spend_flush_interval": 0.2},
    }))
    ports = [_free_port(), _free_port()]
    procs = [await _serve(config, ports[0]), await _serve(config, ports[1])]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}",
                                     headers={"authorization": f"Bearer {MASTER}"}) as http:
            key = (await http.post("/admin/keys", json={"name": "load"})).json()
        completed = cut = 0
        stop = asyncio.Event()

        async def client(n: int) -> None:
            nonlocal completed, cut
            base = f"http://127.0.0.1:{ports[n % 2]}"
            async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {key['key']}"},
                                         timeout=GUARD) as http:  # a timeout would count as a cut answer
                i = 0
                while not stop.is_set():
                    i += 1
                    outcome = await chat_once(http, f"hi {n} {i}", stream=i % 2 == 0)
                    completed += outcome == "done"
                    cut += outcome == "cut"
                    if outcome == "down":
                        await asyncio.sleep(0.05)  # the replica is down: try again until it is back

        async def reach(count: int) -> None:
            for _ in range(3000):  # polling the clients' count, not timing anything (a hang guard of 60 s)
                if completed >= count:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"the clients did not get {count} answers")

        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        await reach(300)
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(10)
        procs[0] = await _serve(config, ports[0])  # claims the dead one's slot, stores its journal
        await reach(completed + 200)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), GUARD * 2)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # graceful: the last batches are stored
            proc.wait(30)
        with psycopg.connect(fresh_pg) as db:
            row = db.execute("SELECT COUNT(*) FROM stellwerk_spend WHERE key_id = %s", (key["id"],)).fetchone()
        assert row is not None
        assert cut <= CLIENTS // 2  # only the killed replica's requests in flight were cut
        assert completed <= row[0] <= completed + cut  # == completed when the kill cut no answer after its record
        left = [p.name for p in tmp_path.iterdir() if p.name.startswith("spend.journal") and not p.name.endswith(".lock")]
        assert left == []  # every journal file was stored and deleted
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


