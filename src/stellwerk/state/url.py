"""``server.store`` URLs, written as SQLAlchemy writes them, to a store.

    sqlite:///stellwerk.db        relative to the working directory (the default)
    sqlite:////var/lib/stw.db     an absolute path (four slashes)
    sqlite:///:memory:            in memory (gone at exit; tests)
    postgresql://...              the scale-out issue: refused for now, naming what is supported
"""

from __future__ import annotations

from .interfaces import Store
from .sqlite import SQLiteStore

__all__ = ["DEFAULT_STORE", "open_store", "store_problem"]

DEFAULT_STORE = "sqlite:///stellwerk.db"


def store_problem(url: str) -> str | None:
    """What is wrong with ``url`` (None when it can be opened)."""
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return None
    if url.startswith(("postgresql://", "postgres://")):
        return "PostgreSQL is not supported yet; use sqlite:///relative/path.db or sqlite:////absolute/path.db"
    return "expected sqlite:///relative/path.db or sqlite:////absolute/path.db"


def open_store(url: str) -> Store:
    """The store at ``url`` (``ValueError`` naming what is supported)."""
    problem = store_problem(url)
    if problem is not None:
        raise ValueError(f"server.store: {problem}")
    return SQLiteStore(url[len("sqlite:///"):])
