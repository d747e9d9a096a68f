"""The spend ledger: journal first, store in batches, recovered after a crash without double counting."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from stellwerk.keys import SpendLedger
from stellwerk.state.sqlite import SQLiteStore
from stellwerk.telemetry import RequestFinished
from stellwerk.usage import Usage


def finished(n: int, key: str = "key_a", cost: float = 0.5) -> RequestFinished:
    return RequestFinished(request_id=f"r{n}", operation="chat", model="chat", deployment="a", status=200,
                           attempts=(), latency=0.1, ttft=None, stream=False, usage=Usage(10, 5), cost=cost,
                           key_id=key, team="t")


async def test_records_are_journaled_at_once_and_stored_in_batches(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    ledger = SpendLedger(store, tmp_path / "s.db.journal", wall=lambda: 1000.0, interval=60)
    await ledger.start()
    for n in range(3):
        ledger(finished(n))
    assert ledger.path == tmp_path / "s.db.journal.0"  # this process's slot of the journal
    assert len(ledger.path.read_bytes().splitlines()) == 3  # before any batch
    assert await store.count() == 0
    await ledger.flush()
    assert await store.count() == 3
    assert not list(tmp_path.glob("*.flushing"))
    rows = await store.spend("key")
    assert [(r.key, r.requests, r.prompt_tokens, r.completion_tokens, r.cost) for r in rows] == [
        ("key_a", 3, 30, 15, 1.5)]
    assert [r.key for r in await store.spend("team", since=1000.0, until=1000.5)] == ["t"]
    assert await store.spend("team", since=1001.0) == []
    await ledger.close()
    await store.close()


async def test_a_crash_loses_nothing_that_was_journaled_and_counts_nothing_twice(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    ledger = SpendLedger(store, tmp_path / "s.db.journal", interval=60)
    await ledger.start()
    for n in range(5):
        ledger(finished(n))
    await ledger.flush()  # stored ...
    for n in range(5, 8):
        ledger(finished(n))
    # ... then "killed": the last three are only in the journal; and a batch set aside but stored already
    # (killed between the store's commit and the deletion of the set-aside file) is replayed idempotently
    assert ledger.path is not None and ledger.slot is not None
    stored = ledger.path.read_bytes()
    (tmp_path / "s.db.journal.0.7.flushing").write_bytes(stored)
    with open(ledger.path, "ab") as journal:
        journal.write(b'["torn')  # a line cut by the kill
    os.close(ledger._fd)  # the process is gone: no close(), no flush(); the kernel drops its slot's lock
    ledger.slot.release()
    again = SpendLedger(SQLiteStore(tmp_path / "s.db"), tmp_path / "s.db.journal")
    assert await again.recover() == 6  # 3 + the same 3 once more: deduplicated by id
    assert await again.store.count() == 8
    assert not [p for p in tmp_path.glob("*.journal*") if not p.name.endswith(".lock")]


async def test_the_journal_of_an_earlier_version_is_recovered(tmp_path: Path) -> None:
    """One journal file next to the store (``<db>.journal`` and ``<db>.journal.<pid>-<n>.flushing``)."""
    store = SQLiteStore(tmp_path / "s.db")
    old = SpendLedger(store, None)
    for n in range(4):
        old(finished(n))
    lines = [msgspec.json.encode(r) for r in old._pending]
    (tmp_path / "s.db.journal").write_bytes(b"\n".join(lines[:2]) + b"\n")
    (tmp_path / "s.db.journal.123-1.flushing").write_bytes(b"\n".join(lines[2:]) + b"\n")
    ledger = SpendLedger(store, tmp_path / "s.db.journal")
    assert await ledger.recover() == 4
    assert await store.count() == 4
    await ledger.close()


async def test_large_batches_are_stored_whole_and_deduplicated(tmp_path: Path) -> None:
    """Batches go in as chunks of rows per statement plus a remainder; a batch stored twice counts once."""
    store = SQLiteStore(tmp_path / "s.db")
    ledger = SpendLedger(store, tmp_path / "s.db.journal", interval=60)
    await ledger.start()
    for n in range(250):
        ledger(finished(n, cost=0.01))
    batch = list(ledger._pending)
    await ledger.flush()
    assert await store.count() == 250
    await store.append(batch[:230])  # replayed, as after a crash between the commit and the journal's deletion
    assert await store.count() == 250
    rows = await store.spend("key")
    assert [(r.requests, r.prompt_tokens, round(r.cost, 6)) for r in rows] == [(250, 2500, 2.5)]
    await ledger.close()
    await store.close()
