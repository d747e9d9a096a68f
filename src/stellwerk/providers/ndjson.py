"""Newline-delimited JSON framing (``application/x-ndjson``), for providers that stream it (Ollama)."""

from __future__ import annotations

__all__ = ["NDJSONParser"]


class NDJSONParser:
    """Incremental: ``feed(bytes)`` returns the complete, non-blank lines (without their newline)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        end = buffer.rfind(b"\n")
        if end < 0:
            self._buffer = buffer
            return []
        self._buffer = buffer[end + 1:]
        return [line for line in (raw.strip() for raw in buffer[:end].split(b"\n")) if line]

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete line."""
        return self._buffer
