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


def too_large(what: str, limit: int) -> UpstreamError:
    return UpstreamError(Outcome.RETRY_HERE, f"upstream sent a stream {what} larger than {limit} bytes",
                         reason="protocol")


class SSEParser:
    """Incremental parser: ``feed(bytes)`` returns the complete events as ``(event, data)`` pairs.

    ``event`` is ``""`` when the event has no ``event:`` field. Multiple ``data:``
    lines are joined with newlines, as the SSE specification says. Comments and
    ``id:``/``retry:`` fields are ignored. Line ends may be LF, CRLF or CR, split
    anywhere across reads. Raises :class:`UpstreamError` when an event grows
    beyond ``max_event`` bytes.
    """

    __slots__ = ("_after_cr", "_buffer", "max_event")

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self._buffer = bytearray()
        """Bytes of events whose end has not arrived yet, line ends normalized to LF."""
        self._after_cr = False
        """The last read ended with CR: an LF starting the next one belongs to it (a CRLF split in two)."""
        self.max_event = max_event

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        if not data:
            return []
        if self._after_cr and data[:1] == b"\n":
            data = data[1:]
        self._after_cr = data[-1:] == b"\r"
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer
        if not buffer and data.startswith(b"data: ") and data.endswith(b"\n\n"):
            body = data[6:-2]
            if b"\n" not in body:
                return [("", body)]  # the common case: a read holding exactly one single-line event
        start = max(0, len(buffer) - 1)  # a blank line may straddle the old and the new bytes
        buffer += data
        if buffer.find(b"\n\n", start) < 0:
            if len(buffer) > self.max_event:
                buffer.clear()
                raise too_large("event", self.max_event)
            return []  # only the new bytes were looked at
        last = buffer.rfind(b"\n\n")
        complete = bytes(buffer[:last])
        del buffer[:last + 2]
        if len(buffer) > self.max_event:
            buffer.clear()
            raise too_large("event", self.max_event)
        return [event for block in complete.split(b"\n\n") if (event := _event(block)) is not None]

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete event."""
        return bytes(self._buffer)


def _event(block: bytes) -> tuple[str, bytes] | None:
    """One event's lines (between blank lines) as ``(event, data)``; None for a block of comments only."""
    if block[:6] == b"data: " and b"\n" not in block:
        return "", block[6:]  # the common case: one data line
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
    return (event, b"\n".join(data_lines)) if data_lines or event else None
