"""CPU per spend record stored, SQLite vs PostgreSQL (``server.store``), and the cost of a stored response.

    .venv/bin/python bench/store_cost.py                       # the machine's PostgreSQL at 127.0.0.1:5432
    .venv/bin/python bench/store_cost.py --records 20000 --pg postgresql://postgres@127.0.0.1:5432/postgres

The request path is the same for both stores (one JSON line written to the journal, see
``stellwerk.keys.ledger``); what differs is the writer: batches of records appended to the store off the
request path. For each store and batch size this stores ``--records`` records in batches and reports the
CPU seconds per record of this process (``time.process_time``: the gateway's share, in its worker thread)
and, for PostgreSQL, of the server backend serving the connection (its ``utime + stime`` from /proc: the
database's share, when it runs on this machine). Batches of 25 are what a gateway at ~50 requests/s
writes every 0.5 s, 500 what one at ~1,000 requests/s writes. It also times ``put`` and ``get`` of a
stored response (``/v1/responses`` with ``store``, one round trip on that request's path). Each store
writes into a database of its own (a temporary file; a ``stellwerk_bench_<random>`` database, dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from stellwerk.state.postgres import PostgresStore
from stellwerk.state.records import SpendRecord
from stellwerk.state.sqlite import SQLiteStore

TICKS = os.sysconf("SC_CLK_TCK")


def records(n: int, prefix: str) -> list[SpendRecord]:
    return [SpendRecord(id=f"{prefix}{i:x}", time=1.7e9 + i, request_id=f"req_{i:032x}", key_id="key_0123456789abcdef",
                        team="search", model="chat", deployment="openai-east", status=200, prompt_tokens=812,
                        completion_tokens=96, cost=0.0012, latency=0.42, cached=False) for i in range(n)]


def backend_cpu(pid: int | None) -> float:
    """CPU seconds of a server process on this machine (0 when it is not readable)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


async def measure(store: Any, batch: int, total: int, pid: int | None) -> tuple[float, float, float]:
    """(µs of this process's CPU, µs of the server's CPU, µs of wall time) per record."""
    rows = records(total, f"{batch}-{os.urandom(3).hex()}-")
    await store.append(rows[:batch])  # connected and warm
    cpu, server, wall = time.process_time(), backend_cpu(pid), time.perf_counter()
    for i in range(batch, total, batch):
        await store.append(rows[i:i + batch])
    n = total - batch
    return ((time.process_time() - cpu) / n * 1e6, (backend_cpu(pid) - server) / n * 1e6,
            (time.perf_counter() - wall) / n * 1e6)


async def responses(store: Any, n: int = 200) -> tuple[float, float]:
    """µs of wall time per ``put`` and per ``get`` of a 2 kB stored response."""
    value = b"x" * 2048
    started = time.perf_counter()
    for i in range(n):
        await store.put(f"responses:k:{i}", value, 3600)
    put = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for i in range(n):
        await store.get(f"responses:k:{i}")
    return put, (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batches", default="25,500")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"stellwerk_bench_{os.urandom(4).hex()}"
    with psycopg.connect(args.pg, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"'.encode())
    url = args.pg.rsplit("/", 1)[0] + "/" + name
    print(f"{'store':<12}{'batch':>7}{'this process µs/rec':>22}{'server µs/rec':>16}{'wall µs/rec':>14}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for batch in map(int, args.batches.split(",")):
                sqlite = SQLiteStore(Path(tmp) / f"bench-{batch}.db")
                mine, _, wall = await measure(sqlite, batch, args.records, None)
                print(f"{'sqlite':<12}{batch:>7}{mine:>22.1f}{'(in process)':>16}{wall:>14.1f}")
                await sqlite.close()
                pg = PostgresStore(url)
                pid = pg._run(lambda db: db.execute("SELECT pg_backend_pid()").fetchone(), "bench")[0]
                mine, server, wall = await measure(pg, batch, args.records, pid)
                print(f"{'postgresql':<12}{batch:>7}{mine:>22.1f}{server:>16.1f}{wall:>14.1f}")
                await pg.close()
            pg = PostgresStore(url)
            put, get = await responses(pg)
            print(f"stored response (2 kB) on PostgreSQL: put {put:.0f} µs, get {get:.0f} µs (wall, one round trip)")
            await pg.close()
            line = len(__import__("msgspec").json.encode(records(1, "0123456789ab")[0])) + 1
            print(f"journal line: {line} bytes per request")
    finally:
        with psycopg.connect(args.pg, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
