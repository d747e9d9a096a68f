"""Newline-delimited JSON framing (``application/x-ndjson``), for providers that stream it (Ollama).

Bounded and linear like :mod:`~stellwerk.providers.sse`: a line may be at most ``MAX_EVENT`` bytes,
and each read is scanned once.
"""

from __future__ import annotations

from .sse import MAX_EVENT, too_large

__all__ = ["NDJSONParser"]


class NDJSONParser:
    """Incremental: ``feed(bytes)`` returns the complete, non-blank lines (without their newline)."""

    __slots__ = ("_parts", "_size", "max_line")

    def __init__(self, max_line: int = MAX_EVENT) -> None:
        self._parts: list[bytes] = []
        self._size = 0
        self.max_line = max_line

    def feed(self, data: bytes) -> list[bytes]:
        end = data.rfind(b"\n")
        if end < 0:
            self._size += len(data)
            if self._size > self.max_line:
                self._parts = []
                self._size = 0
                raise too_large("line", self.max_line)
            self._parts.append(data)
            return []
        if self._parts:
            self._parts.append(data[:end])
            head = b"".join(self._parts)
        else:
            head = data[:end]
        rest = data[end + 1:]
        self._parts = [rest] if rest else []
        self._size = len(rest)
        return [line for line in (raw.strip() for raw in head.split(b"\n")) if line]

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete line."""
        return b"".join(self._parts)
