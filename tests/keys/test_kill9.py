"""kill -9 of the gateway under load: every answer a client completed has its record in the ledger.

The gateway runs as a process (``stellwerk serve``) with a key store in a temporary folder. Clients send
requests without pause and count the answers they received completely (JSON and streams); the gateway is
killed with SIGKILL in the middle of that, started again on the same store, and the ledger asked.
A request whose answer was cut by the kill may or may not have its record (it was journaled before its
last byte, which may not have arrived), so the ledger holds at least the completed answers and at most
those plus the requests in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import httpx
import yaml
from keys_support import MASTER, PRICE

from support import GUARD

CLIENTS = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _serve(config: Path, port: int) -> subprocess.Popen[bytes]:
    log = config.with_suffix(".log")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stellwerk.cli", "serve", "--config", str(config),
                                 "--port", str(port)], stdout=out, stderr=out)
    async with httpx.AsyncClient(timeout=1.0) as client:
        for _ in range(300):  # a hang guard of 30 s
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not start: " + log.read_text())


async def chat_once(http: httpx.AsyncClient, content: str, *, stream: bool) -> Literal["done", "other", "cut", "down"]:
    """One chat request: ``done`` when its answer arrived completely (a stream up to ``[DONE]``), ``other`` for
    any other answer, ``cut`` when the connection broke after the request was sent (the answer may have been
    journaled), ``down`` when the gateway could not be reached at all."""
    body = {"model": "chat", "messages": [{"role": "user", "content": content}], "stream": stream}
    try:
        response = await http.post("/v1/chat/completions", json=body)
    except httpx.ConnectError:
        return "down"
    except httpx.TransportError:
        return "cut"
    done = response.status_code == 200 and (not stream or response.text.endswith("data: [DONE]\n\n"))
    return "done" if done else "other"


async def test_kill_9_loses_no_completed_answer(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    config = tmp_path / "stellwerk.yaml"
    config.write_text(yaml.safe_dump({
        "models": [{"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "sim-model",
                                                      "api_base": sim.base_url, "price": PRICE}]}],
        "server": {"master_key": MASTER, "store": f"sqlite:///{tmp_path / 'stw.db'}", "spend_flush_interval": 0.2},
    }))
    port = _free_port()
    proc = await _serve(config, port)
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {MASTER}"}) as admin:
            key = (await admin.post("/admin/keys", json={"name": "load"})).json()
        completed = 0
        stop = asyncio.Event()

        async def client(n: int) -> None:
            nonlocal completed
            headers = {"authorization": f"Bearer {key['key']}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=GUARD) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    outcome = await chat_once(http, f"hi {n} {i}", stream=i % 2 == 0)
                    if outcome in ("cut", "down"):
                        return  # the gateway is gone
                    completed += outcome == "done"

        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        for _ in range(1500):  # polling the clients' count, not timing anything (a hang guard of 30 s)
            if completed >= 300:
                break
            await asyncio.sleep(0.02)
        assert completed >= 300, "the clients did not get 300 answers"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), GUARD)
        proc = await _serve(config, port)  # on the same store: recovers the journal
        async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {MASTER}"}) as admin:
            rows = (await admin.get("/admin/spend", params={"group_by": "key"})).json()["rows"]
        recorded = sum(r["requests"] for r in rows if r["key"] == key["id"])
        assert completed <= recorded <= completed + CLIENTS
    finally:
        proc.kill()
        proc.wait(10)
