"""PostgreSQL for the tests: the machine's server with a database of our own, or a throwaway cluster.

``MACHINE`` (127.0.0.1:5432, trust auth) is used when it answers; each test session creates its own
database (``stellwerk_test_<random>``) and drops it afterwards; the server itself is never stopped.
Tests that stop PostgreSQL start a :class:`Cluster` of their own (initdb in a temporary folder, a free
port), run as the ``postgres`` user when the tests run as root (initdb refuses root). Without a server
and without binaries the tests skip, printing why, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest

from support import GUARD

MACHINE = os.environ.get("STELLWERK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def absent(reason: str) -> NoReturn:
    """Skip (printing ``reason``), or fail under ``CI=true``: there these tests must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}")
    print(f"\nskipping PostgreSQL tests: {reason}", file=sys.stderr)
    pytest.skip(reason)


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=int(GUARD)):  # a slow answer is not an absent server
            return True
    except psycopg.OperationalError:
        return False


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead of its own."""
    return url.rsplit("/", 1)[0] + "/" + name


def create_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"'.encode())
    return with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """A PostgreSQL cluster of this test alone: ``start``, ``stop`` (``fast`` or ``immediate``), ``remove``."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            absent("no PostgreSQL binaries (initdb, pg_ctl) to start a throwaway cluster")
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="stellwerk-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            record = pwd.getpwnam(self._user)
            os.chown(self.dir, record.pw_uid, record.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.running = False

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stdout}\n{done.stderr}")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def remove(self) -> None:
        if self.running:
            with contextlib.suppress(AssertionError):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
