"""The spend ledger's one query, ``GET /admin/spend``, for every SQL store (SQLite ``?``, PostgreSQL ``%s``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .interfaces import GroupBy
from .records import SpendRow

__all__ = ["spend_query", "spend_rows"]

_COLUMNS: dict[str, str] = {"key": "key_id", "team": "team", "model": "model", "deployment": "deployment"}


def spend_query(table: str, group_by: GroupBy, since: float | None, until: float | None,
                mark: str = "?") -> tuple[str, list[Any]]:
    """SQL and arguments: requests, tokens and cost per ``group_by`` of the rows with ``since <= time < until``,
    dearest first. ``mark`` is the driver's parameter placeholder."""
    column = _COLUMNS[group_by]
    where, args = ["1=1"], list[Any]()
    if since is not None:
        where.append(f"time >= {mark}")
        args.append(since)
    if until is not None:
        where.append(f"time < {mark}")
        args.append(until)
    return (f"SELECT {column}, COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost) FROM {table} "
            f"WHERE {' AND '.join(where)} GROUP BY {column} ORDER BY SUM(cost) DESC, {column}"), args


def spend_rows(rows: Iterable[tuple[Any, ...]]) -> list[SpendRow]:
    """The query's rows as :class:`SpendRow` (sums of no rows are 0)."""
    return [SpendRow(key=g, requests=int(n), prompt_tokens=int(p or 0), completion_tokens=int(c or 0),
                     cost=float(cost or 0.0)) for g, n, p, c, cost in rows]
