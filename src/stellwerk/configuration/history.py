"""The versions a router has run: each with its source, author, time, base config and overlay."""

from __future__ import annotations

import collections
from collections.abc import Callable

import msgspec

from stellwerk.config import Config

from .overlay import Edit

__all__ = ["History", "Version"]


class Version(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    source: str
    """``start``, ``file:PATH``, ``api:PUT /admin/config``, ``api:weight D``, ``rollback:N``, ..."""
    author: str | None
    applied_at: float
    """Wall-clock seconds (Unix time)."""
    base: Config
    overlay: tuple[Edit, ...]
    config: Config
    """``base`` with ``overlay`` applied: what the routing table of this version runs."""


class History:
    """The last ``keep`` versions, and the last refused change. ``on_record`` persists a version (the store)."""

    def __init__(self, keep: int = 200, on_record: Callable[[Version], None] | None = None) -> None:
        self._versions: collections.OrderedDict[int, Version] = collections.OrderedDict()
        self._keep = keep
        self.on_record = on_record
        """Called with every version recorded (the store keeps it)."""
        self.last_error: str | None = None

    def record(self, version: Version) -> None:
        self._versions[version.number] = version
        while len(self._versions) > self._keep:
            self._versions.popitem(last=False)
        self.last_error = None
        if self.on_record is not None:
            self.on_record(version)

    def get(self, number: int) -> Version | None:
        return self._versions.get(number)

    @property
    def current(self) -> Version:
        return next(reversed(self._versions.values()))

    def all(self) -> list[Version]:
        return list(self._versions.values())
