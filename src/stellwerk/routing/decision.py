"""The :class:`Decision` record (re-exported by :mod:`stellwerk.routing.planner`).

It lives in this module of its own because ``stellwerk.routing.planner`` is compiled with mypyc, which drops
the keyword arguments of a class statement (``kw_only=True``); this module is not compiled.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stellwerk.routing.strategies import Scored

__all__ = ["Decision"]


class Decision(msgspec.Struct, kw_only=True):
    """Why a request goes where it goes (``x-stellwerk-route``, ``GET /admin/route``)."""

    model: str
    strategy: str
    summary: str
    order: list[str]
    scores: list[Scored] = []
    removed: list[tuple[str, str, str]] = []
    """``(deployment, filter, why)`` for every candidate a filter removed."""
    route: str | None = None
    """Route-choosing strategies: the route chosen, and why."""
    target: str | None = None
    """Route-choosing strategies: the model the request continues on, if the route names one."""
    candidates: list[dict[str, Any]] = []
    """The snapshots the decision was made on (dry runs only)."""
