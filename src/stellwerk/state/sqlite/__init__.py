"""The SQLite store: keys, teams and the spend ledger in one file."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
