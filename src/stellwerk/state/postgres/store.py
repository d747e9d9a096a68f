"""Keys, teams, the spend ledger, configuration versions and stored responses in PostgreSQL.

One connection (autocommit), used from worker threads (``asyncio.to_thread``) under a lock, as the
SQLite store uses its file: the event loop never waits on the server. Keys and teams are JSON
documents by id, spend records rows deduplicated by their ``id`` (``ON CONFLICT DO NOTHING``), so a
replayed journal counts nothing twice. The schema is migrated at the first connection
(:mod:`.schema`). A second connection LISTENs for key and team changes (:meth:`PostgresStore.follow`).

**Faults.** A call that finds its connection broken reconnects once at once (a restarted server);
when that fails too it raises :class:`~stellwerk.errors.StoreUnavailableError`. Nothing here retries
beyond that: the spend ledger keeps its journal and tries again, the admin API answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import msgspec
import psycopg

from stellwerk.errors import StoreUnavailableError
from stellwerk.state.interfaces import GroupBy
from stellwerk.state.records import KeyRecord, SpendRecord, SpendRow, TeamRecord
from stellwerk.state.spend_query import spend_query, spend_rows

from .schema import migrate

__all__ = ["CHANNEL", "PostgresStore"]

T = TypeVar("T")
Connection = psycopg.Connection[tuple[Any, ...]]
Changed = Callable[[KeyRecord | TeamRecord | None], Awaitable[None]]

CHANNEL = "stellwerk_keys"
"""The NOTIFY channel of key and team changes; the payload is ``key:<id>`` or ``team:<name>``."""
PRUNE_EVERY = 1000
"""Expired stored responses are deleted on every this many puts."""
log = logging.getLogger("stellwerk.store")
_key_decoder = msgspec.json.Decoder(KeyRecord)
_team_decoder = msgspec.json.Decoder(TeamRecord)
_INSERT_SPEND = (b"INSERT INTO stellwerk_spend SELECT * FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[], "
                 b"%s::text[], %s::text[], %s::text[], %s::int[], %s::bigint[], %s::bigint[], %s::float8[], "
                 b"%s::float8[], %s::bool[]) ON CONFLICT (id) DO NOTHING")
"""A batch in one statement, column by column (one round trip; a row per record is ~10x slower)."""


class PostgresStore:
    """The :class:`~stellwerk.state.interfaces.Store` at ``url``; ``wall`` is the clock of response expiry
    (and of the warnings' pace)."""

    def __init__(self, url: str, *, connect_timeout: float = 3.0, wall: Callable[[], float] = time.time) -> None:
        self.url = url
        self.path = _redacted(url)
        """The URL without its password (what messages may show)."""
        self._params: dict[str, Any] = {"connect_timeout": max(1, round(connect_timeout)), "autocommit": True,
                                        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                                        "keepalives_count": 2}
        self._wall = wall
        self._db: Connection | None = None
        self._lock = threading.Lock()
        self._puts = 0
        self.migrated: list[int] | None = None
        """The migrations this store applied at its first connection (None before it)."""

    # -- the connection --------------------------------------------------------------------------
    def _connect(self) -> Connection:
        db: Connection = psycopg.connect(self.url, **self._params)
        if self.migrated is None:
            self.migrated = migrate(db)
        return db

    def _run(self, work: Callable[[Connection], T], what: str) -> T:
        """``work`` on the connection; reconnects once, then :class:`StoreUnavailableError` naming ``what``."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._db is None or self._db.closed:
                        self._db = self._connect()
                    return work(self._db)
                except (psycopg.OperationalError, psycopg.InterfaceError) as err:
                    self._drop()
                    if attempt == 2:
                        log.debug("store %s: %s", self.path, err)
                        raise StoreUnavailableError(what) from None
            raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._db is not None:
            with contextlib.suppress(psycopg.Error):
                self._db.close()
            self._db = None

    async def _off_loop(self, work: Callable[[Connection], T], what: str) -> T:
        return await asyncio.to_thread(self._run, work, what)

    # -- keys and teams --------------------------------------------------------------------------
    def load_now(self) -> tuple[list[KeyRecord], list[TeamRecord]]:
        def work(db: Connection) -> tuple[list[KeyRecord], list[TeamRecord]]:
            keys = [_key_decoder.decode(doc) for (doc,) in db.execute("SELECT doc FROM stellwerk_keys ORDER BY changed")]
            teams = [_team_decoder.decode(doc) for (doc,) in
                     db.execute("SELECT doc FROM stellwerk_teams ORDER BY changed")]
            return keys, teams
        return self._run(work, "the keys cannot be loaded")

    async def load(self) -> tuple[list[KeyRecord], list[TeamRecord]]:
        return await asyncio.to_thread(self.load_now)

    async def put_key(self, key: KeyRecord) -> None:
        await self._off_loop(_upsert("stellwerk_keys", "id", key.id, msgspec.json.encode(key), f"key:{key.id}"),
                             f"key {key.id} cannot be saved; nothing was changed")

    async def put_team(self, team: TeamRecord) -> None:
        await self._off_loop(_upsert("stellwerk_teams", "name", team.name, msgspec.json.encode(team),
                                     f"team:{team.name}"), f"team '{team.name}' cannot be saved; nothing was changed")

    async def changed(self, payload: str) -> KeyRecord | TeamRecord | None:
        """The key or team a notice names (``key:<id>``, ``team:<name>``), as stored now."""
        kind, _, name = payload.partition(":")
        table, column, decode = (("stellwerk_keys", "id", _key_decoder.decode) if kind == "key"
                                 else ("stellwerk_teams", "name", _team_decoder.decode))
        sql = f"SELECT doc FROM {table} WHERE {column} = %s"
        row = await self._off_loop(lambda db: db.execute(sql, (name,)).fetchone(), f"{kind} {name} cannot be read")
        return decode(row[0]) if row is not None else None

    async def follow(self, changed: Changed, *, retry: float = 1.0,
                     sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """LISTEN for key and team changes until cancelled: ``changed(record)`` for each, and ``changed(None)``
        on every (re)connection (reload everything: what changed while not listening). Reconnects every
        ``retry`` seconds while the server is unreachable, warning once a minute."""
        warned = -math.inf
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, **self._params)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await changed(None)
                    async for note in conn.notifies():
                        record = await self.changed(note.payload)
                        if record is not None:
                            await changed(record)
            except (psycopg.Error, StoreUnavailableError) as err:
                if self._wall() - warned >= 60:
                    warned = self._wall()
                    log.warning("store %s: not following key changes (%s); retrying every %gs", self.path,
                                str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, retry)
            await sleep(retry)

    # -- the spend ledger ----------------------------------------------------------------------------
    def append_now(self, records: Sequence[SpendRecord]) -> None:
        columns = [list(c) for c in zip(*map(msgspec.structs.astuple, records), strict=True)]  # in the table's order
        if not columns:
            return
        self._run(lambda db: db.execute(_INSERT_SPEND, columns), f"{len(records)} spend records wait in the journal")

    async def append(self, records: Sequence[SpendRecord]) -> None:
        await asyncio.to_thread(self.append_now, records)

    def spend_now(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        sql, args = spend_query("stellwerk_spend", group_by, since, until, "%s")
        return spend_rows(self._run(lambda db: db.execute(sql.encode(), args).fetchall(),
                                    "the spend ledger cannot be read"))

    async def spend(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        return await asyncio.to_thread(self.spend_now, group_by, since, until)

    async def count(self) -> int:
        row = await self._off_loop(lambda db: db.execute("SELECT COUNT(*) FROM stellwerk_spend").fetchone(),
                                   "the spend ledger cannot be read")
        return int(row[0]) if row is not None else 0

    # -- configuration versions ----------------------------------------------------------------------
    def put_config_version_now(self, number: int, doc: bytes) -> None:
        """Keep a configuration version (admin path; blocks for one round trip)."""
        self._run(lambda db: db.execute(
            "INSERT INTO stellwerk_config_versions VALUES (%s, %s) ON CONFLICT (number) DO UPDATE SET doc = %s",
            (number, doc, doc)), f"configuration version {number} is applied here but not kept")

    def latest_config_version_now(self) -> bytes | None:
        row = self._run(lambda db: db.execute(
            "SELECT doc FROM stellwerk_config_versions ORDER BY number DESC LIMIT 1").fetchone(),
            "the configuration versions cannot be read")
        return bytes(row[0]) if row is not None else None

    # -- stored responses (key-value with expiry) ----------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        now = self._wall()
        row = await self._off_loop(lambda db: db.execute(
            "SELECT value FROM stellwerk_responses WHERE key = %s AND (expires_at IS NULL OR expires_at > %s)",
            (key, now)).fetchone(), "stored responses cannot be read")
        return bytes(row[0]) if row is not None else None

    async def put(self, key: str, value: bytes, ttl: float | None = None) -> None:
        now = self._wall()
        expires = now + ttl if ttl is not None else None
        self._puts += 1
        prune = self._puts % PRUNE_EVERY == 0

        def work(db: Connection) -> None:  # one round trip; not waiting for the commit's fsync (not a record)
            with db.pipeline(), db.transaction():
                db.execute("SET LOCAL synchronous_commit TO OFF")
                db.execute("INSERT INTO stellwerk_responses VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE "
                           "SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at", (key, value, expires))
                if prune:
                    db.execute("DELETE FROM stellwerk_responses WHERE expires_at <= %s", (now,))
        await self._off_loop(work, "the response cannot be stored")

    async def delete(self, key: str) -> None:
        await self._off_loop(lambda db: db.execute("DELETE FROM stellwerk_responses WHERE key = %s", (key,)),
                             "the stored response cannot be deleted")

    async def close(self) -> None:
        with self._lock:
            self._drop()


def _upsert(table: str, column: str, name: str, doc: bytes, notice: str) -> Callable[[Connection], None]:
    """Insert or replace a document and notify the other replicas, in one transaction."""
    sql = (f"INSERT INTO {table} ({column}, doc) VALUES (%s, %s) ON CONFLICT ({column}) DO UPDATE "
           f"SET doc = EXCLUDED.doc, changed = nextval(pg_get_serial_sequence('{table}', 'changed'))")

    def work(db: Connection) -> None:
        with db.transaction():
            db.execute(sql.encode(), (name, doc))
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notice))
    return work


def _redacted(url: str) -> str:
    """``url`` without the password of its user part."""
    scheme, sep, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in user:
        return url
    return f"{scheme}://{user.split(':', 1)[0]}:***@{host}"
