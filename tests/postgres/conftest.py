"""Fixtures of the PostgreSQL store's tests: a database of this session (``pg_url``), a fresh one per test
(``fresh_pg``) and a throwaway cluster (``cluster``). See :mod:`pg_support`."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "keys"))

from pg_support import MACHINE, Cluster, absent, answers, binaries, create_database, drop_database


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """A server to create databases on: the machine's, else a throwaway cluster for the session."""
    if answers(MACHINE):
        yield MACHINE
        return
    if binaries() is None:
        absent(f"no PostgreSQL server answers at {MACHINE} and no binaries to start one")
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.remove()


def _database(admin: str) -> Iterator[str]:
    name = f"stellwerk_test_{os.urandom(6).hex()}"
    url = create_database(admin, name)
    try:
        yield url
    finally:
        drop_database(admin, name)


@pytest.fixture(scope="session")
def pg_url(pg_admin: str) -> Iterator[str]:
    """A database of this test session (dropped at its end)."""
    yield from _database(pg_admin)


@pytest.fixture
def fresh_pg(pg_admin: str) -> Iterator[str]:
    """A database of this test alone (no tables yet)."""
    yield from _database(pg_admin)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A running PostgreSQL cluster of this test alone, which it may stop and start."""
    made = Cluster()
    try:
        made.start()
        yield made
    finally:
        made.remove()
