"""AWS event-stream framing (``application/vnd.amazon.eventstream``), decoded incrementally.

One message::

    ┌──────────────┬───────────────┬─────────────┬─────────┬─────────┬─────────────┐
    │ total length │ headers length│ prelude CRC │ headers │ payload │ message CRC │
    │ uint32 BE    │ uint32 BE     │ CRC32 of 8  │         │         │ CRC32 of    │
    │              │               │ bytes before│         │         │ all before  │
    └──────────────┴───────────────┴─────────────┴─────────┴─────────┴─────────────┘
      4              4               4             h         t-h-16    4

A header is: name length (uint8), name (UTF-8), value type (uint8), value.
Value types: 0 true, 1 false, 2 int8, 3 int16, 4 int32, 5 int64, 6 bytes
(uint16 length + data), 7 string (uint16 length + UTF-8), 8 timestamp (int64
ms), 9 UUID (16 bytes). Both CRCs are verified (``zlib.crc32``); a mismatch,
an impossible length or an unknown value type is a protocol error.
"""

from __future__ import annotations

import struct
import zlib

from stellwerk.errors import Outcome, UpstreamError

__all__ = ["MAX_MESSAGE", "EventMessage", "EventStreamDecoder", "HeaderValue"]

MAX_MESSAGE = 16 * 1024 * 1024
"""Largest message accepted (AWS documents 16 MiB); a larger prelude means the stream is corrupt."""

HeaderValue = bool | int | bytes | str
_PRELUDE = struct.Struct(">III")
_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


class EventMessage:
    """One decoded message: its headers (``:event-type``, ``:message-type``…) and payload bytes."""

    __slots__ = ("headers", "payload")

    def __init__(self, headers: dict[str, HeaderValue], payload: bytes) -> None:
        self.headers = headers
        self.payload = payload

    def header(self, name: str) -> str:
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""

    def __repr__(self) -> str:
        return f"EventMessage({self.headers!r}, {self.payload!r})"


def _corrupt(detail: str) -> UpstreamError:
    return UpstreamError(Outcome.RETRY_HERE, f"upstream sent a corrupt event stream: {detail}", reason="protocol")


def _headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    i = 0
    try:
        while i < len(data):
            size = data[i]
            name = data[i + 1:i + 1 + size].decode()
            i += 1 + size
            kind = data[i]
            i += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                value = struct.unpack_from(fmt, data, i)[0]
                i += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", data, i)
                raw = data[i + 2:i + 2 + length]
                if len(raw) != length:
                    raise _corrupt("a header value runs past the headers")
                value = raw.decode() if kind == 7 else raw
                i += 2 + length
            elif kind == 9:
                value = data[i:i + 16]
                i += 16
            else:
                raise _corrupt(f"unknown header value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError):
        raise _corrupt("malformed headers") from None
    if i != len(data):
        raise _corrupt("malformed headers")
    return headers


class EventStreamDecoder:
    """``feed(bytes)`` returns the complete messages they finish."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()
        """An incomplete message, appended to in place (a long message costs linear, not quadratic, time)."""

    def feed(self, data: bytes) -> list[EventMessage]:
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += data
            buffer = self._buffer
        else:
            buffer = data
        messages: list[EventMessage] = []
        start = 0
        while len(buffer) - start >= 12:
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
            if zlib.crc32(buffer[start:start + 8]) != prelude_crc:
                raise _corrupt("prelude checksum mismatch")
            if total > MAX_MESSAGE or total < 16 or headers_length > total - 16:
                raise _corrupt(f"impossible message length {total}")
            if len(buffer) - start < total:
                break
            end = start + total
            (message_crc,) = struct.unpack_from(">I", buffer, end - 4)
            if zlib.crc32(buffer[start:end - 4]) != message_crc:
                raise _corrupt("message checksum mismatch")
            headers = _headers(bytes(buffer[start + 12:start + 12 + headers_length]))
            messages.append(EventMessage(headers, bytes(buffer[start + 12 + headers_length:end - 4])))
            start = end
        if buffer is self._buffer:
            del self._buffer[:start]
        elif start < len(buffer):
            self._buffer = bytearray(buffer[start:])
        return messages

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete message."""
        return bytes(self._buffer)
