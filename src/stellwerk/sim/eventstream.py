"""An encoder for AWS event-stream frames (``application/vnd.amazon.eventstream``), as Bedrock streams them.

One frame (all integers big-endian)::

    total length (4) | headers length (4) | prelude CRC32 (4) | headers | payload | message CRC32 (4)

The prelude CRC covers the first 8 bytes, the message CRC everything before it.
Each header is ``name length (1) | name | value type (1) | value``; the sim only
writes strings (type 7: ``value length (2) | UTF-8 bytes``). Bedrock sends
``:event-type``, ``:content-type`` and ``:message-type`` (``event``), or, for a
failure mid-stream, ``:exception-type``, ``:content-type`` and ``:message-type``
(``exception``); the payload is JSON.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Final

__all__ = ["event_headers", "exception_headers", "frame", "header_block"]

_STRING: Final = 7
_PRELUDE: Final = struct.Struct("!II")
_CRC: Final = struct.Struct("!I")


def header_block(headers: Sequence[tuple[str, str]]) -> bytes:
    """Encode string-valued headers (encode once per event type and reuse)."""
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def event_headers(event_type: str) -> bytes:
    return header_block([(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")])


def exception_headers(exception_type: str) -> bytes:
    return header_block(
        [(":exception-type", exception_type), (":content-type", "application/json"), (":message-type", "exception")]
    )


def frame(headers: bytes, payload: bytes) -> bytes:
    """One frame of encoded ``headers`` (see :func:`header_block`) and ``payload``."""
    prelude = _PRELUDE.pack(16 + len(headers) + len(payload), len(headers))
    message = prelude + _CRC.pack(zlib.crc32(prelude)) + headers + payload
    return message + _CRC.pack(zlib.crc32(message))
