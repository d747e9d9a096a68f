"""The spend ledger: one record per finished request, journaled at once, stored in batches.

    RequestFinished ─► SpendLedger (a listener) ─► one line appended to the journal (os.write, no fsync)
                                                ─► pending batch ─► every ``interval`` (or ``batch`` records):
                                                   set the journal aside, SpendStore.append(batch), delete it

The listener runs when a request completes, which is before the answer's last
byte is sent (a complete answer: before it is written; a stream: before
``[DONE]``). A line handed to ``write`` survives a ``kill -9`` of the gateway
(the kernel has it), so at start :meth:`recover` moves what the journal files
still hold into the store; records carry a unique ``id``, so a batch that was
stored just before the kill is not counted twice. (A power loss can lose the
last lines: the journal is not fsynced per request.) Requests the gateway
refused itself at admission (401, 403, 429 without any upstream attempt) spent
nothing and are not recorded.

**Slots.** Each process writes its own journal file, a slot of the configured journal claimed with
flock (:mod:`.journal`), so workers and replicas sharing a directory never share a file; at start a
process adopts the files of slots no running process holds (a crashed one's).

**Store outages.** When the store cannot take a batch, the batch stays on disk (a set-aside file;
memory keeps only its name) and is retried, oldest first, after 1, 2, 4 ... up to 64 intervals;
a warning is logged when the outage starts and about every minute while it lasts, and the number of
records stored once it ends. The journal grows by about 150 bytes per request meanwhile (100
requests/s for an hour: about 55 MB); nothing caps it, so that no spend is dropped.
A ledger without a journal (an in-memory store) keeps at most ``MAX_UNSTORED`` records in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from stellwerk.errors import StellwerkError
from stellwerk.state.interfaces import SpendStore
from stellwerk.state.records import SpendRecord
from stellwerk.telemetry.events import Event, RequestFinished

from .journal import Slot

__all__ = ["MAX_UNSTORED", "SpendLedger"]

log = logging.getLogger("stellwerk.ledger")
_REFUSED: Final = frozenset({401, 403, 429})
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SpendRecord).decode


MAX_UNSTORED = 1_000_000
"""Records a ledger without a journal keeps while its store cannot take them (the oldest are dropped)."""
MAX_BACKOFF = 64
"""Intervals between attempts at most while the store cannot take batches."""


class SpendLedger:
    """Listener for :class:`RequestFinished`; ``start`` claims a journal slot, recovers and starts the writer.

    ``journal``: the configured journal path (each process writes ``<journal>.<n>``, see :mod:`.journal`);
    None for no journal (an in-memory store)."""

    def __init__(self, store: SpendStore, journal: str | Path | None, *, wall: Callable[[], float] = time.time,
                 interval: float = 0.5, batch: int = 1000) -> None:
        self.store = store
        self.journal = Path(journal) if journal is not None else None
        self.slot: Slot | None = None
        """This process's slot of the journal (claimed at :meth:`recover`)."""
        self._wall = wall
        self._interval = interval
        self._batch = batch
        self._pending: list[SpendRecord] = []
        self._backlog: list[tuple[Path, list[SpendRecord] | None]] = []
        """Batches set aside and not yet stored, oldest first, with their records while still in memory."""
        self._fd = -1
        self._task: asyncio.Task[None] | None = None
        self._prefix = os.urandom(6).hex()
        self._count = 0
        """Record ids: a random prefix per ledger and a counter (unique without a random draw per record)."""
        self._wake: asyncio.Event | None = None
        self._failures = 0
        self._skip = 0
        self._warned = 0.0
        self._storing = asyncio.Lock()
        """One storer at a time (the writer, an admin read that flushes first, close)."""

    @property
    def path(self) -> Path | None:
        """The journal file this process appends to (None before :meth:`recover`, or without a journal)."""
        return self.slot.path if self.slot is not None else None

    @property
    def waiting(self) -> int:
        """Batches (set-aside files, or the in-memory batch) the store has not taken yet."""
        return len(self._backlog) + (1 if self._fd < 0 and self._pending and self._failures else 0)

    # -- the listener (request path: one encode and one write) ------------------------------------------
    def __call__(self, event: Event) -> None:
        if not isinstance(event, RequestFinished):
            return
        if event.status in _REFUSED and not event.attempts and event.deployment is None:
            return  # refused at admission (key, model, limit): nothing was spent; the access log has it
        usage = event.usage
        self._count += 1
        record = SpendRecord(
            id=f"{self._prefix}{self._count:x}", time=self._wall(), request_id=event.request_id, key_id=event.key_id,
            team=event.team, model=event.model, deployment=event.deployment, status=event.status,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost=event.cost,
            latency=event.latency, cached=bool(event.cache))
        if self._fd >= 0:
            try:
                os.write(self._fd, _encode(record) + b"\n")
            except OSError:
                log.exception("spend journal %s: write failed; the record is kept in memory only", self.path)
        self._pending.append(record)
        if len(self._pending) >= self._batch and self._wake is not None:
            self._wake.set()

    # -- start, the writer, close ---------------------------------------------------------------------
    async def recover(self) -> int:
        """Claim a journal slot and store what earlier processes' journals hold (at start, before serving);
        returns the records stored. Batches the store cannot take now stay on disk and are retried."""
        if self.journal is None:
            return 0
        if self.slot is None:
            self.slot = Slot(self.journal)
        self._backlog[:0] = [(file, None) for file in self.slot.leftovers()]
        return await self._store_backlog()

    async def start(self) -> None:
        await self.recover()
        if self.slot is not None:
            self._fd = os.open(self.slot.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="spend-ledger")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            if self._skip > 0:  # backing off while the store cannot take batches
                self._skip -= 1
                continue
            await self.flush()

    async def flush(self) -> None:
        """Store the pending records now (and any batch still waiting from an outage)."""
        if self._pending:
            if self._fd >= 0:
                self._backlog.append((self._rotate(), self._pending))
                self._pending = []
            elif not self._backlog:
                self._backlog.append((Path(), self._pending))
                self._pending = []
        await self._store_backlog()

    async def _store_backlog(self) -> int:
        """Store waiting batches, oldest first, until one fails; returns the records stored."""
        async with self._storing:
            return await self._store_waiting()

    async def _store_waiting(self) -> int:
        stored = 0
        while self._backlog:
            file, records = self._backlog[0]
            if records is None:
                records = _read(file)
            try:
                await self.store.append(records)
            except Exception as err:
                self._failed(err, file, records)
                return stored
            self._backlog.pop(0)
            stored += len(records)
            if file != Path():
                with contextlib.suppress(FileNotFoundError):
                    file.unlink()
        if self._failures:
            log.warning("spend ledger: the store takes batches again; %d records stored from the journal", stored)
            self._failures = 0
        return stored

    def _failed(self, err: Exception, file: Path, records: list[SpendRecord]) -> None:
        if file == Path():  # no journal: the batch is memory's only copy
            if len(records) > MAX_UNSTORED:
                del records[:len(records) - MAX_UNSTORED]
            self._backlog[0] = (file, records)
        else:  # on disk: keep only its name
            self._backlog = [(f, None) for f, _ in self._backlog]
        self._failures += 1
        self._skip = min(MAX_BACKOFF, 2 ** (self._failures - 1))
        now = self._wall()
        if self._failures == 1 or now - self._warned >= 60:
            self._warned = now
            level = logging.WARNING if isinstance(err, StellwerkError) else logging.ERROR
            log.log(level, "spend ledger: the store cannot take records (%s); %d batches wait in the journal %s "
                    "and are retried", err, len(self._backlog), self.journal, exc_info=not isinstance(err, StellwerkError))

    def _rotate(self) -> Path:
        """Close the journal, set it aside for the batch being stored, and open a new one."""
        assert self.slot is not None
        aside = self.slot.aside()
        os.close(self._fd)
        os.replace(self.slot.path, aside)
        self._fd = os.open(self.slot.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return aside

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.slot is not None:
            with contextlib.suppress(FileNotFoundError):
                if self.slot.path.stat().st_size == 0:
                    self.slot.path.unlink()
            self.slot.release()  # batches still waiting stay on disk: the next process to start adopts them


def _read(file: Path) -> list[SpendRecord]:
    records = []
    for line in file.read_bytes().splitlines():
        try:
            records.append(_decode(line))
        except msgspec.DecodeError:
            log.warning("spend journal %s: skipped a damaged line", file)
    return records
