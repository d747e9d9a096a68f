"""Journal slots: processes sharing a journal path never share a file; a dead one's files are adopted.

flock locks belong to an open file description, so two slots opened in one test process exclude each
other exactly as two processes would; "killing" a process is releasing its slot without closing its ledger.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_ledger import finished

from stellwerk.errors import StoreUnavailableError
from stellwerk.keys import SpendLedger
from stellwerk.keys.journal import Slot
from stellwerk.state.interfaces import GroupBy
from stellwerk.state.records import SpendRecord, SpendRow
from stellwerk.state.sqlite import SQLiteStore


class Outage:
    """A SpendStore in front of SQLite that refuses batches while ``down`` (as PostgreSQL's store does)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.down = False
        self.refused = 0

    async def append(self, records: list[SpendRecord]) -> None:
        if self.down:
            self.refused += 1
            raise StoreUnavailableError(f"{len(records)} spend records wait in the journal")
        await self.store.append(records)

    async def spend(self, group_by: GroupBy, since: float | None = None, until: float | None = None) -> list[SpendRow]:
        return await self.store.spend(group_by, since, until)

    async def count(self) -> int:
        return await self.store.count()


def test_processes_sharing_a_journal_claim_different_slots(tmp_path: Path) -> None:
    base = tmp_path / "spend.journal"
    first, second = Slot(base), Slot(base)
    assert (first.path.name, second.path.name) == ("spend.journal.0", "spend.journal.1")
    child = subprocess.run([sys.executable, "-c", "import sys; from stellwerk.keys.journal import Slot; "
                            "print(Slot(sys.argv[1]).path.name)", str(base)], capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "spend.journal.2"  # another process sees both held
    first.release()
    assert Slot(base).path.name == "spend.journal.0"  # free again
    second.release()


async def test_a_dead_process_journal_is_adopted_by_the_next_to_start(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    base = tmp_path / "spend.journal"
    alive, dead = SpendLedger(store, base, interval=60), SpendLedger(store, base, interval=60)
    await alive.start()
    await dead.start()
    for n in range(3):
        alive(finished(n))
        dead(finished(10 + n))
    os.close(dead._fd)  # killed: its three records are only in its journal, its slot's lock is gone
    assert dead.slot is not None
    dead.slot.release()
    late = SpendLedger(store, base, interval=60)
    assert await late.recover() == 3  # the dead one's; the living one's journal is its own
    assert await store.count() == 3
    await alive.close()
    assert await store.count() == 6
    await late.close()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("spend.journal") and not p.name.endswith(".lock")]


async def test_batches_wait_on_disk_while_the_store_is_down_and_are_stored_when_it_returns(tmp_path: Path) -> None:
    outage = Outage(SQLiteStore(tmp_path / "s.db"))
    ledger = SpendLedger(outage, tmp_path / "spend.journal", interval=60)
    await ledger.start()
    outage.down = True
    for round_ in range(3):
        for n in range(4):
            ledger(finished(round_ * 10 + n))
        await ledger.flush()
    assert ledger.waiting == 3 and await outage.count() == 0
    assert ledger._backlog[0][1] is None  # memory keeps the names of the waiting batches, not their records
    assert len(list(tmp_path.glob("spend.journal.0.*.flushing"))) == 3
    await ledger.close()  # still down: the batches stay on disk for the next process
    outage.down = False
    again = SpendLedger(outage, tmp_path / "spend.journal", interval=60)
    assert await again.recover() == 12
    assert await outage.count() == 12
    await again.close()


async def test_the_writer_backs_off_while_the_store_is_down(tmp_path: Path) -> None:
    outage = Outage(SQLiteStore(tmp_path / "s.db"))
    ledger = SpendLedger(outage, tmp_path / "spend.journal", interval=60)
    await ledger.start()
    outage.down = True
    ledger(finished(1))
    await ledger.flush()
    assert ledger._skip == 1
    await ledger.flush()
    await ledger.flush()
    assert ledger._skip == 4 and outage.refused == 3  # 1, 2, 4 ... intervals, up to MAX_BACKOFF
    outage.down = False
    await ledger.flush()
    assert ledger.waiting == 0 and ledger._failures == 0 and await outage.count() == 1
    await ledger.close()
