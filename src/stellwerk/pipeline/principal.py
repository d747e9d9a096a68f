"""Who is calling: the :class:`Principal` the auth stage sets on a call (compiled: read on every governed request).

A compiled class rather than a msgspec record: the auth and limits stages and the request's record read its
fields natively (a msgspec field read from compiled code is a generic attribute lookup, about 160
instructions). Its fields are ``Final``: read-only in the compiled build, and for mypy everywhere.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["Principal"]


@final
class Principal:
    """Who is calling: set by the auth middleware (None while auth is off). Equal by value, hashable, immutable."""

    __slots__ = ("key_id", "scopes", "team")

    def __init__(self, *, key_id: str, team: str | None = None, scopes: frozenset[str] = frozenset()) -> None:
        self.key_id: Final = key_id
        self.team: Final = team
        self.scopes: Final = scopes

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Principal):
            return NotImplemented
        return self.key_id == other.key_id and self.team == other.team and self.scopes == other.scopes

    def __hash__(self) -> int:
        return hash((self.key_id, self.team, self.scopes))

    def __repr__(self) -> str:
        return f"Principal(key_id={self.key_id!r}, team={self.team!r}, scopes={self.scopes!r})"
