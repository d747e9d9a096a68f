"""The spend ledger: one record per finished request, journaled at once, stored in batches.

    RequestFinished ─► SpendLedger (a listener) ─► one line appended to the journal (os.write, no fsync)
                                                ─► pending batch ─► every ``interval`` (or ``batch`` records):
                                                   rotate the journal, SpendStore.append(batch), delete it

The listener runs when a request completes, which is before the answer's last
byte is sent (a complete answer: before it is written; a stream: before
``[DONE]``). A line handed to ``write`` survives a ``kill -9`` of the gateway
(the kernel has it), so at start :meth:`recover` moves what the journal files
still hold into the store; records carry a unique ``id``, so a batch that was
stored just before the kill is not counted twice. (A power loss can lose the
last lines: the journal is not fsynced per request.) Requests the gateway
refused itself at admission (401, 403, 429 without any upstream attempt) spent
nothing and are not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from stellwerk.state.interfaces import SpendStore
from stellwerk.state.records import SpendRecord
from stellwerk.telemetry.events import Event, RequestFinished

__all__ = ["SpendLedger"]

log = logging.getLogger("stellwerk.ledger")
_REFUSED = frozenset({401, 403, 429})
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(SpendRecord).decode


class SpendLedger:
    """Listener for :class:`RequestFinished`; ``start`` recovers the journal and starts the writer."""

    def __init__(self, store: SpendStore, journal: str | Path | None, *, wall: Callable[[], float] = time.time,
                 interval: float = 0.5, batch: int = 1000) -> None:
        self.store = store
        self.path = Path(journal) if journal is not None else None
        """The journal file (None: no journal, for an in-memory store)."""
        self._wall = wall
        self._interval = interval
        self._batch = batch
        self._pending: list[SpendRecord] = []
        self._unsaved: list[Path] = []
        self._fd = -1
        self._sequence = 0
        self._task: asyncio.Task[None] | None = None
        self._prefix = os.urandom(6).hex()
        self._count = 0
        """Record ids: a random prefix per ledger and a counter (unique without a random draw per record)."""
        self._wake: asyncio.Event | None = None

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
        """Move what journal files hold into the store (at start, before serving); returns the records."""
        if self.path is None:
            return 0
        files = sorted(self.path.parent.glob(self.path.name + ".*.flushing"), key=os.path.getmtime)
        if self.path.exists():
            files.append(self.path)
        records: list[SpendRecord] = []
        for file in files:
            for line in file.read_bytes().splitlines():
                try:
                    records.append(_decode(line))
                except msgspec.DecodeError:
                    log.warning("spend journal %s: skipped a damaged line", file)
        if records:
            await self.store.append(records)
        for file in files:
            file.unlink()
        return len(records)

    async def start(self) -> None:
        await self.recover()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="spend-ledger")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Store the pending records now."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        if self._fd >= 0:
            self._unsaved.append(self._rotate())
        try:
            await self.store.append(batch)
        except Exception:
            log.exception("spend ledger: storing %d records failed; retrying with the next batch", len(batch))
            self._pending[:0] = batch
            return
        for file in self._unsaved:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        self._unsaved.clear()

    def _rotate(self) -> Path:
        """Close the journal, set it aside for the batch being stored, and open a new one."""
        assert self.path is not None
        self._sequence += 1
        aside = self.path.with_name(f"{self.path.name}.{os.getpid()}-{self._sequence}.flushing")
        os.close(self._fd)
        os.replace(self.path, aside)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return aside

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._fd >= 0 and not self._pending and self.path is not None:
            os.close(self._fd)
            self._fd = -1
            with contextlib.suppress(FileNotFoundError):
                if self.path.stat().st_size == 0:
                    self.path.unlink()
