"""What the key store and the spend ledger hold: keys, teams, spend records. Plain frozen structs.

A key's secret is never part of a record: only its SHA-256 (``hash``). Budgets
are in US dollars per ``period``; periods are fixed windows aligned to the Unix
epoch in UTC (``1h`` on the hour, ``1d`` at 00:00 UTC, ``7d`` and ``30d`` counted
from 1970-01-01), or ``total`` (never reset).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = ["PERIODS", "Budget", "KeyRecord", "Limit", "SpendRecord", "SpendRow", "TeamRecord", "period_start"]

PERIODS: dict[str, float] = {"1h": 3600.0, "1d": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "total": 0.0}
"""Budget periods and their lengths in seconds (``total``: one period forever)."""

Period = Literal["1h", "1d", "7d", "30d", "total"]
Limit = Annotated[int, Meta(ge=1, le=1_000_000_000)]


def period_start(period: str, now: float) -> float:
    """Wall-clock start of the budget period that contains ``now`` (0 for ``total``)."""
    length = PERIODS[period]
    return (now // length) * length if length else 0.0


class Budget(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    usd: Annotated[float, Meta(ge=0, le=1e9)]
    """Dollars that may be spent per period."""
    period: Period = "total"
    """``1h``, ``1d``, ``7d``, ``30d`` or ``total``. Default ``total``."""


class KeyRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A gateway API key: who it is, what it may use, how much. ``hash`` is the SHA-256 of the secret."""

    id: str
    name: str
    hash: str
    team: str | None = None
    models: tuple[str, ...] = ()
    """Model names or globs (``gpt-*``) the key may use; empty means every model."""
    rpm: Limit | None = None
    tpm: Limit | None = None
    max_parallel: Limit | None = None
    budget: Budget | None = None
    expires_at: float | None = None
    """Unix time after which the key is refused."""
    scopes: tuple[str, ...] = ("inference",)
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = {}
    created_at: float = 0.0
    revoked_at: float | None = None
    source: Literal["api", "config"] = "api"
    """``config`` for keys declared in the config file (changed there, not through the admin API)."""


class TeamRecord(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A team: its keys count against its own limits as well as their own. Teams are named uniquely."""

    name: str
    models: tuple[str, ...] = ()
    rpm: Limit | None = None
    tpm: Limit | None = None
    max_parallel: Limit | None = None
    budget: Budget | None = None
    created_at: float = 0.0


class SpendRecord(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """One finished request in the ledger. ``id`` is unique (journal replays are idempotent)."""

    id: str
    time: float
    """Unix time the request finished."""
    request_id: str
    key_id: str | None
    team: str | None
    model: str
    deployment: str | None
    status: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency: float
    cached: bool


class SpendRow(msgspec.Struct, frozen=True, kw_only=True):
    """One group of ``GET /admin/spend``: requests, tokens and dollars of one key, team, model or deployment."""

    key: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
