"""Server-sent events framing, shared by every provider that streams SSE.

Bounded and linear: an event may be at most ``MAX_EVENT`` bytes (a larger one is a protocol error,
not an ever-growing buffer), and each read is scanned once, so an upstream that never sends a blank
line costs linear, not quadratic, CPU.
"""

from __future__ import annotations

from stellwerk.errors import Outcome, UpstreamError

__all__ = ["MAX_EVENT", "SSEParser"]

MAX_EVENT = 1 << 20
"""Largest event accepted, in bytes (1 MiB)."""


def _has_blank_line(data: bytes) -> bool:
    """Whether ``data`` holds an empty line, with any of the three line endings (LF, CRLF, CR)."""
    return b"\n\n" in data or b"\r\r" in data or b"\n\r" in data


def too_large(what: str, limit: int) -> UpstreamError:
    return UpstreamError(Outcome.RETRY_HERE, f"upstream sent a stream {what} larger than {limit} bytes",
                         reason="protocol")


class SSEParser:
    """Incremental parser: ``feed(bytes)`` returns the complete events as ``(event, data)`` pairs.

    ``event`` is ``""`` when the event has no ``event:`` field. Multiple ``data:``
    lines are joined with newlines, as the SSE specification says. Comments and
    ``id:``/``retry:`` fields are ignored. Raises :class:`UpstreamError` when an
    event grows beyond ``max_event`` bytes.
    """

    __slots__ = ("_parts", "_size", "max_event")

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self._parts: list[bytes] = []
        """Reads of an event whose end has not arrived yet (joined once, when it does)."""
        self._size = 0
        self.max_event = max_event

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        if not data:
            return []  # an empty read: kept, it would hide the previous part's end from the blank-line check
        if self._parts:
            edge = self._parts[-1][-2:] + data[:2]
            if not (_has_blank_line(data) or _has_blank_line(edge)):
                return self._keep(data)  # still no end of the event: only the new bytes were looked at
            self._parts.append(data)
            buffer = b"".join(self._parts)
            self._parts = []
            self._size = 0
        else:
            if data.startswith(b"data: ") and data.endswith(b"\n\n"):
                body = data[6:-2]
                if b"\n" not in body and b"\r" not in body:
                    return [("", body)]  # the common case: exactly one single-line event
            buffer = data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[tuple[str, bytes]] = []
        blocks = buffer.split(b"\n\n")
        rest = blocks.pop()  # an incomplete event, or b""
        if rest:
            self._keep(rest)
        for block in blocks:
            if block[:6] == b"data: " and b"\n" not in block:
                events.append(("", block[6:]))  # the common case: one data line
                continue
            event = ""
            data_lines: list[bytes] = []
            for line in block.split(b"\n"):
                if not line or line.startswith(b":"):
                    continue
                name, _, value = line.partition(b":")
                if value.startswith(b" "):
                    value = value[1:]
                if name == b"data":
                    data_lines.append(value)
                elif name == b"event":
                    event = value.decode("utf-8", "replace")
            if data_lines or event:
                events.append((event, b"\n".join(data_lines)))
        return events

    def _keep(self, data: bytes) -> list[tuple[str, bytes]]:
        self._size += len(data)
        if self._size > self.max_event:
            self._parts = []
            self._size = 0
            raise too_large("event", self.max_event)
        self._parts.append(data)
        return []

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete event."""
        return b"".join(self._parts)
