"""Keys, teams and the spend ledger in one SQLite file (the default store).

One connection in WAL mode, used from worker threads (``asyncio.to_thread``)
under a lock, so the event loop never waits on the file. Keys and teams are
JSON documents by id; spend records are rows, deduplicated by their ``id``.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import msgspec

from stellwerk.state.interfaces import GroupBy
from stellwerk.state.records import KeyRecord, SpendRecord, SpendRow, TeamRecord
from stellwerk.state.spend_query import spend_query, spend_rows

__all__ = ["SQLiteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS teams (name TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS spend (
    id TEXT PRIMARY KEY, time REAL NOT NULL, request_id TEXT NOT NULL, key_id TEXT, team TEXT, model TEXT NOT NULL,
    deployment TEXT, status INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    cost REAL NOT NULL, latency REAL NOT NULL, cached INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS spend_time ON spend (time);
CREATE TABLE IF NOT EXISTS config_versions (number INTEGER PRIMARY KEY, doc BLOB NOT NULL);
"""
_INSERT_ROW = "INSERT OR IGNORE INTO spend VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
_CHUNK = 100
_INSERT_CHUNK = _INSERT_ROW + ",(?,?,?,?,?,?,?,?,?,?,?,?,?)" * (_CHUNK - 1)
"""``_CHUNK`` rows in one statement (1,300 parameters; SQLite allows 32,766)."""
_key_decoder = msgspec.json.Decoder(KeyRecord)
_team_decoder = msgspec.json.Decoder(TeamRecord)


class SQLiteStore:
    """``KeyStore`` and ``SpendStore`` on ``path`` (``:memory:`` for a private in-memory database)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return work(self._db)

    async def _off_loop(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(self._run, work)

    # -- keys and teams --------------------------------------------------------------
    def load_now(self) -> tuple[list[KeyRecord], list[TeamRecord]]:
        """:meth:`load`, synchronously (the CLI)."""
        def work(db: sqlite3.Connection) -> tuple[list[KeyRecord], list[TeamRecord]]:
            keys = [_key_decoder.decode(doc) for (doc,) in db.execute("SELECT doc FROM keys ORDER BY rowid")]
            teams = [_team_decoder.decode(doc) for (doc,) in db.execute("SELECT doc FROM teams ORDER BY rowid")]
            return keys, teams
        return self._run(work)

    async def load(self) -> tuple[list[KeyRecord], list[TeamRecord]]:
        return await asyncio.to_thread(self.load_now)

    def put_key_now(self, key: KeyRecord) -> None:
        doc = msgspec.json.encode(key)
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO keys (id, doc) VALUES (?, ?)", (key.id, doc)))

    async def put_key(self, key: KeyRecord) -> None:
        await asyncio.to_thread(self.put_key_now, key)

    async def put_team(self, team: TeamRecord) -> None:
        doc = msgspec.json.encode(team)
        await self._off_loop(lambda db: db.execute("INSERT OR REPLACE INTO teams (name, doc) VALUES (?, ?)",
                                                   (team.name, doc)))

    # -- the spend ledger ------------------------------------------------------------
    def append_now(self, records: Sequence[SpendRecord]) -> None:
        rows = list(map(msgspec.structs.astuple, records))  # the fields in the table's column order
        whole = len(rows) - len(rows) % _CHUNK

        def work(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            try:  # chunks of rows in one statement: a quarter fewer instructions per row than executemany
                for start in range(0, whole, _CHUNK):
                    db.execute(_INSERT_CHUNK, list(itertools.chain.from_iterable(rows[start:start + _CHUNK])))
                db.executemany(_INSERT_ROW, rows[whole:])
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        self._run(work)

    async def append(self, records: Sequence[SpendRecord]) -> None:
        await asyncio.to_thread(self.append_now, records)

    def spend_now(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        sql, args = spend_query("spend", group_by, since, until)
        return spend_rows(self._run(lambda db: db.execute(sql, args).fetchall()))

    async def spend(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        return await asyncio.to_thread(self.spend_now, group_by, since, until)

    async def count(self) -> int:
        (n,) = await self._off_loop(lambda db: db.execute("SELECT COUNT(*) FROM spend").fetchone())
        return int(n)

    # -- configuration versions -----------------------------------------------------------
    def put_config_version_now(self, number: int, doc: bytes) -> None:
        """Keep a configuration version (its number, source, author and API edits; never credentials)."""
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO config_versions VALUES (?, ?)", (number, doc)))

    def latest_config_version_now(self) -> bytes | None:
        row = self._run(lambda db: db.execute(
            "SELECT doc FROM config_versions ORDER BY number DESC LIMIT 1").fetchone())
        return bytes(row[0]) if row is not None else None

    async def close(self) -> None:
        self._run(lambda db: db.close())
