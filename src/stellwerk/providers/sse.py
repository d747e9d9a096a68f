"""Server-sent events framing, shared by every provider that streams SSE."""

from __future__ import annotations

__all__ = ["SSEParser"]


class SSEParser:
    """Incremental parser: ``feed(bytes)`` returns the complete events as ``(event, data)`` pairs.

    ``event`` is ``""`` when the event has no ``event:`` field. Multiple ``data:``
    lines are joined with newlines, as the SSE specification says. Comments and
    ``id:``/``retry:`` fields are ignored.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        if not self._buffer and data.startswith(b"data: ") and data.endswith(b"\n\n"):
            body = data[6:-2]
            if b"\n" not in body and b"\r" not in body:
                return [("", body)]  # the common case: exactly one single-line event
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[tuple[str, bytes]] = []
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()  # an incomplete event, or b""
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

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete event."""
        return self._buffer
