"""The PostgreSQL store behind the same interfaces as SQLite, against the real server."""

from __future__ import annotations

import asyncio
import threading

import psycopg

from stellwerk.state.interfaces import KeyChanges, KeyValue, Store
from stellwerk.state.postgres import PostgresStore
from stellwerk.state.postgres.schema import MIGRATIONS
from stellwerk.state.records import Budget, KeyRecord, SpendRecord, TeamRecord
from stellwerk.state.url import journal_of, open_store, store_problem


def record(n: int, key: str = "key_a", team: str | None = "t", time: float = 1000.0) -> SpendRecord:
    return SpendRecord(id=f"r{n}", time=time, request_id=f"q{n}", key_id=key, team=team, model="chat", deployment="a",
                       status=200, prompt_tokens=10, completion_tokens=5, cost=0.5, latency=0.1, cached=n % 2 == 0)


def test_urls_choose_the_store_and_its_journal(pg_url: str) -> None:
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore) and isinstance(store, KeyChanges) and isinstance(store, KeyValue)
    assert store_problem("postgres://u@h/db") is None and store_problem("mysql://x") is not None
    assert journal_of(pg_url, None) == "stellwerk-spend.journal"
    assert journal_of(pg_url, "/var/lib/stw/spend") == "/var/lib/stw/spend"
    assert journal_of("sqlite:///a/b.db", None) == "a/b.db.journal" and journal_of("sqlite:///:memory:", None) is None
    assert PostgresStore("postgresql://stw:secret@db:5432/x").path == "postgresql://stw:***@db:5432/x"


async def test_keys_teams_and_config_versions(fresh_pg: str) -> None:
    store: Store = PostgresStore(fresh_pg)
    assert await store.load() == ([], [])
    a = KeyRecord(id="key_a", name="a", hash="h" * 64, team="t", rpm=5, budget=Budget(usd=2, period="1d"))
    await store.put_team(TeamRecord(name="t", tpm=100))
    await store.put_key(a)
    await store.put_key(KeyRecord(id="key_b", name="b", hash="g" * 64))
    await store.put_key(KeyRecord(id="key_a", name="a", hash="h" * 64, revoked_at=5.0))  # replaced
    other = PostgresStore(fresh_pg)
    keys, teams = await other.load()
    await other.close()
    assert [(k.id, k.revoked_at) for k in keys] == [("key_b", None), ("key_a", 5.0)]  # in order of change
    assert teams == [TeamRecord(name="t", tpm=100)]
    assert store.latest_config_version_now() is None
    store.put_config_version_now(1, b"one")
    store.put_config_version_now(2, b"two")
    assert store.latest_config_version_now() == b"two"
    await store.close()


async def test_the_ledger_is_idempotent_and_grouped(fresh_pg: str) -> None:
    store = PostgresStore(fresh_pg)
    await store.append([record(n) for n in range(3)])
    await store.append([record(n) for n in range(2, 5)] + [record(9, key="key_b", team=None, time=2000.0)])
    assert await store.count() == 6
    rows = await store.spend("key")
    assert [(r.key, r.requests, r.prompt_tokens, r.completion_tokens, r.cost) for r in rows] == [
        ("key_a", 5, 50, 25, 2.5), ("key_b", 1, 10, 5, 0.5)]
    assert [(r.key, r.requests) for r in await store.spend("team", since=1000.0, until=1500.0)] == [("t", 5)]
    assert [r.key for r in await store.spend("team", since=1500.0)] == [None]
    assert await store.spend("model", until=999.0) == []
    await store.close()


async def test_stored_responses_expire(fresh_pg: str) -> None:
    now = [100.0]
    store = PostgresStore(fresh_pg, wall=lambda: now[0])
    await store.put("a", b"conversation", ttl=10)
    await store.put("b", b"kept")
    other = PostgresStore(fresh_pg, wall=lambda: now[0])
    assert await other.get("a") == b"conversation"  # shared: another replica reads it
    await other.close()
    now[0] = 111.0
    assert await store.get("a") is None and await store.get("b") == b"kept"
    await store.delete("b")
    assert await store.get("b") is None
    await store.close()


def test_migrations_are_applied_once_when_replicas_start_at_once(fresh_pg: str) -> None:
    replicas = [PostgresStore(fresh_pg) for _ in range(8)]
    start = threading.Barrier(len(replicas))
    errors: list[BaseException] = []

    def open_(store: PostgresStore) -> None:
        start.wait()
        try:
            store.latest_config_version_now()  # the first use connects and migrates
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_, args=(s,)) for s in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for store in replicas:
        asyncio.run(store.close())
    assert errors == []
    applied = sorted(n for s in replicas for n in s.migrated or [])
    assert applied == [n for n, _ in MIGRATIONS]  # each by exactly one replica
    with psycopg.connect(fresh_pg) as db:
        assert [n for (n,) in db.execute("SELECT number FROM stellwerk_migrations ORDER BY number")] == applied
    again = PostgresStore(fresh_pg)
    again.latest_config_version_now()
    assert again.migrated == []  # nothing left to do on a later start
    asyncio.run(again.close())
