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
        if buffer:
            start = len(buffer) - 1  # a blank line may straddle the old and the new bytes
            buffer += data
            if buffer.find(b"\n\n", start) < 0:
                return self._check()  # only the new bytes were looked at
            last = buffer.rfind(b"\n\n")
            complete = bytes(buffer[:last])
            del buffer[:last + 2]
        else:  # the common case: nothing kept, work on the read itself
            if data.startswith(b"data: ") and data.endswith(b"\n\n") and b"\n" not in data[6:-2]:
                return [("", data[6:-2])]  # exactly one single-line event
            last = data.rfind(b"\n\n")
            if last < 0:
                buffer += data
                return self._check()
            complete = data[:last]
            buffer += data[last + 2:]
        self._check()
        events: list[tuple[str, bytes]] = []
        for block in complete.split(b"\n\n"):
            if block[:6] == b"data: " and b"\n" not in block:
                events.append(("", block[6:]))  # one data line
            else:
                event = _event(block)
                if event is not None:
                    events.append(event)
        return events

    def _check(self) -> list[tuple[str, bytes]]:
        """Nothing complete yet: the kept bytes must stay within one event's limit."""
        if len(self._buffer) > self.max_event:
            self._buffer.clear()
            raise too_large("event", self.max_event)
        return []

    @property
    def idle(self) -> bool:
        """Nothing is kept from earlier reads: a read that is exactly one event can be taken as it is."""
        return not self._buffer and not self._after_cr

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete event."""
        return bytes(self._buffer)


def _event(block: bytes) -> tuple[str, bytes] | None:
    """One event's lines (between blank lines) as ``(event, data)``; None for a block of comments only."""
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
