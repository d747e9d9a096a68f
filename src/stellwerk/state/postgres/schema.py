"""The PostgreSQL store's schema, as numbered migrations applied at start.

Every process that opens the store runs :func:`migrate`. It takes a transaction-level advisory lock
(one fixed number), so when N replicas start at once one applies the missing migrations and the
others wait for it, then find nothing left to do. Each migration runs in that same transaction with
its row in ``stellwerk_migrations``: a migration is applied completely, once, or not at all.
A migration is never changed once released; a change of the schema is a new number.
"""

from __future__ import annotations

import psycopg

__all__ = ["LOCK", "MIGRATIONS", "migrate"]

LOCK = 0x5354_5745_524B  # "STWERK": the advisory lock the migrations hold
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE stellwerk_keys (id TEXT PRIMARY KEY, doc BYTEA NOT NULL, changed BIGSERIAL);
CREATE TABLE stellwerk_teams (name TEXT PRIMARY KEY, doc BYTEA NOT NULL, changed BIGSERIAL);
CREATE TABLE stellwerk_spend (
    id TEXT PRIMARY KEY, time DOUBLE PRECISION NOT NULL, request_id TEXT NOT NULL, key_id TEXT, team TEXT,
    model TEXT NOT NULL, deployment TEXT, status INTEGER NOT NULL, prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL, cost DOUBLE PRECISION NOT NULL, latency DOUBLE PRECISION NOT NULL,
    cached BOOLEAN NOT NULL);
CREATE INDEX stellwerk_spend_time ON stellwerk_spend (time);
CREATE TABLE stellwerk_config_versions (number INTEGER PRIMARY KEY, doc BYTEA NOT NULL);
"""),
    (2, """
CREATE TABLE stellwerk_responses (key TEXT PRIMARY KEY, value BYTEA NOT NULL, expires_at DOUBLE PRECISION);
CREATE INDEX stellwerk_responses_expiry ON stellwerk_responses (expires_at);
"""),
)
"""(number, SQL), in order. Tables are prefixed ``stellwerk_`` so the store can share a database."""


def migrate(db: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Apply the missing migrations under the advisory lock; returns the numbers this call applied."""
    applied: list[int] = []
    with db.transaction():
        db.execute("SET LOCAL statement_timeout = 0")  # waiting for another replica's migrations is expected
        db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
        db.execute("CREATE TABLE IF NOT EXISTS stellwerk_migrations "
                   "(number INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        done = {number for (number,) in db.execute("SELECT number FROM stellwerk_migrations")}
        for number, sql in MIGRATIONS:
            if number in done:
                continue
            db.execute(sql.encode())
            db.execute("INSERT INTO stellwerk_migrations (number) VALUES (%s)", (number,))
            applied.append(number)
    return applied
