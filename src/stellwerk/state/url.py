"""``server.store`` URLs, written as SQLAlchemy writes them, to a store.

    sqlite:///stellwerk.db        relative to the working directory (the default)
    sqlite:////var/lib/stw.db     an absolute path (four slashes)
    sqlite:///:memory:            in memory (gone at exit; tests)
    postgresql://USER@HOST:PORT/DB  PostgreSQL, shared by replicas (``pip install 'stellwerk[postgres]'``);
                                  ``postgres://`` and libpq's query parameters are accepted too

The spend journal (:mod:`stellwerk.keys.ledger`) sits next to an SQLite file (``<path>.journal``)
unless ``server.spend_journal`` names it; a PostgreSQL store has no file to sit next to, so its
journal is ``server.spend_journal`` or ``stellwerk-spend.journal`` in the working directory.
"""

from __future__ import annotations

import importlib.util

from .interfaces import Store
from .sqlite import SQLiteStore

__all__ = ["DEFAULT_PG_JOURNAL", "DEFAULT_STORE", "journal_of", "open_store", "store_problem"]

DEFAULT_STORE = "sqlite:///stellwerk.db"
DEFAULT_PG_JOURNAL = "stellwerk-spend.journal"
_POSTGRES = ("postgresql://", "postgres://")
_EXPECTED = "expected sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host:port/database"


def store_problem(url: str) -> str | None:
    """What is wrong with ``url`` (None when it can be opened)."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return None
    if url.startswith(_POSTGRES):
        if importlib.util.find_spec("psycopg") is None:
            return "a PostgreSQL store needs psycopg: pip install 'stellwerk[postgres]'"
        return None
    return _EXPECTED


def open_store(url: str) -> Store:
    """The store at ``url`` (``ValueError`` naming what is supported). Opening connects to nothing yet."""
    problem = store_problem(url)
    if problem is not None:
        raise ValueError(f"server.store: {problem}")
    if url.startswith(_POSTGRES):
        from .postgres import PostgresStore

        return PostgresStore(url)
    return SQLiteStore(url[len("sqlite:///"):])


def journal_of(url: str, spend_journal: str | None) -> str | None:
    """Where the spend journal of the store at ``url`` is kept (None: no journal, an in-memory store)."""
    if spend_journal is not None:
        return spend_journal
    if url.startswith(_POSTGRES):
        return DEFAULT_PG_JOURNAL
    path = url[len("sqlite:///"):]
    return None if path == ":memory:" else path + ".journal"
