"""Journal slots: every process that shares a spend journal's directory writes a file of its own.

Several workers of one machine, or several replicas started in one directory, are configured with
the same ``server.spend_journal`` (``BASE``). Each claims the first free slot ``n`` at start::

    BASE.<n>.lock            held with flock(LOCK_EX) for the life of the process (the kernel releases
                             it when the process dies, kill -9 included)
    BASE.<n>                 the journal the process appends to
    BASE.<n>.<seq>.flushing  batches set aside while they are stored

A slot whose lock can be taken belongs to no running process: its files are *orphans*. At start a
process adopts every orphan's files (renames them into its own slot as batches still to store),
under the lock of that slot, so no two processes ever read or write the same journal file.
Files of the single-journal layout of earlier versions (``BASE`` and ``BASE.<pid>-<seq>.flushing``)
are adopted the same way, under ``BASE.lock``.
"""

from __future__ import annotations

import fcntl
import glob
import os
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

__all__ = ["MAX_SLOTS", "Slot"]

MAX_SLOTS = 1024
"""Processes that can share one journal base at once."""


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (created if missing), or None when another process has it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class Slot:
    """This process's slot of the journal ``base``: :attr:`path` is its journal file."""

    def __init__(self, base: str | Path) -> None:
        self.base = Path(base)
        self.base.parent.mkdir(parents=True, exist_ok=True)
        for n in range(MAX_SLOTS):
            fd = _try_lock(self._lock(n))
            if fd is not None:
                self.number, self._fd = n, fd
                break
        else:
            raise OSError(f"spend journal {self.base}: all {MAX_SLOTS} slots are held by running processes")
        self.path = Path(f"{self.base}.{self.number}")
        self._sequence = 0

    def _lock(self, n: int) -> Path:
        return Path(f"{self.base}.{n}.lock")

    def aside(self) -> Path:
        """A new name for a batch set aside from this slot (``BASE.<n>.<seq>.flushing``), oldest first."""
        self._sequence += 1
        while True:
            path = Path(f"{self.path}.{self._sequence}.flushing")
            if not path.exists():
                return path
            self._sequence += 1

    def leftovers(self) -> list[Path]:
        """This slot's files left by an earlier process, and every orphan's, adopted into this slot: the
        batches to store before anything else, oldest first (renaming keeps a file's mtime)."""
        found = self._flushing(self.path) + self._move([self.path] if self.path.exists() else [])
        for lock in glob.glob(glob.escape(str(self.base)) + ".*.lock"):
            number = lock[len(str(self.base)) + 1:-len(".lock")]
            if number.isdigit() and int(number) != self.number:
                found += self._locked(Path(lock), partial(self._files_of, Path(f"{self.base}.{number}")))
        found += self._locked(Path(f"{self.base}.lock"), lambda: ([self.base] if self.base.is_file() else []) + [
            Path(p) for p in glob.glob(glob.escape(str(self.base)) + ".*-*.flushing")])
        return sorted(found, key=_mtime)

    @classmethod
    def _files_of(cls, journal: Path) -> list[Path]:
        return ([journal] if journal.exists() else []) + cls._flushing(journal)

    @staticmethod
    def _flushing(journal: Path) -> list[Path]:
        return [Path(p) for p in glob.glob(glob.escape(str(journal)) + ".*.flushing")]

    def _move(self, files: list[Path]) -> list[Path]:
        """``files`` renamed into this slot as batches set aside."""
        moved = []
        for file in files:
            target = self.aside()
            os.replace(file, target)
            moved.append(target)
        return moved

    def _locked(self, lock: Path, files: Callable[[], list[Path]]) -> list[Path]:
        """The files of an orphan (its slot's lock is free), moved into this slot while holding that lock.
        Lock files are never deleted: a process could hold a lock on a deleted file's inode while another
        takes the same slot on a new one."""
        fd = _try_lock(lock)
        if fd is None:
            return []
        try:
            return self._move(files())
        finally:
            os.close(fd)

    def files(self) -> Iterator[Path]:
        """Every file of this slot on disk (the journal and its set-aside batches)."""
        if self.path.exists():
            yield self.path
        yield from sorted(self._flushing(self.path), key=_mtime)

    def release(self) -> None:
        """Give the slot up (at close; the kernel does it when the process dies)."""
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
