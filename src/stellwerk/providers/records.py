"""The adapters' records: the views a forwarded chunk is decoded into, :class:`UpstreamRequest` and
:class:`Endpoint` (re-exported by :mod:`stellwerk.providers.base`).

They live in this module of their own because ``stellwerk.providers.base`` is compiled with mypyc, which drops
the keyword arguments of a class statement (``frozen=True``) and replaces the annotations msgspec decodes by
(``Any`` and ``list[ChoiceView] | None`` both became ``type``); this module is not compiled.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["ChoiceView", "ChunkView", "DeltaView", "Endpoint", "UpstreamRequest"]


class DeltaView(msgspec.Struct):
    content: Any = None
    role: Any = None
    tool_calls: msgspec.Raw = msgspec.Raw()
    """The raw JSON of ``tool_calls`` (empty when absent); ``has_tool_calls`` says if there are any."""

    @property
    def has_tool_calls(self) -> bool:
        raw = bytes(self.tool_calls)
        return bool(raw) and raw not in (b"null", b"[]")


class ChoiceView(msgspec.Struct):
    delta: DeltaView | None = None
    finish_reason: Any = None


class ChunkView(msgspec.Struct):
    """What the router reads of an OpenAI chunk it forwards unchanged, decoded without building dicts.

    Decoding into this validates the whole JSON text at a quarter of the cost of a dict; the
    chunk's bytes are forwarded as they came, and :func:`chunk_dict` parses them only if some
    consumer needs the whole chunk (library iteration, translation to another API, resumption).
    """

    id: Any = None
    created: Any = None
    model: Any = None
    choices: list[ChoiceView] | None = None
    usage: Any = None
    error: msgspec.Raw = msgspec.Raw()
    """The raw JSON of an ``error`` member (empty when absent)."""


class UpstreamRequest(msgspec.Struct, frozen=True):
    method: str
    url: str
    headers: list[tuple[str, str]] | bytes
    """Header pairs, or a block already encoded as ``name: value\r\n`` lines (see :func:`encode_headers`)."""
    body: bytes


class Endpoint(msgspec.Struct, frozen=True):
    """What an adapter precomputes once per deployment (URLs, auth headers)."""

    chat_url: str
    embeddings_url: str
    models_url: str
    """A cheap authenticated GET (health probes)."""
    headers: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...]
    """Credentials to redact from any text that leaves the gateway."""
    json_headers: bytes = b""
    """``headers`` plus ``accept: application/json``, pre-encoded (the hot path sends these bytes)."""
    sse_headers: bytes = b""
    """``headers`` plus ``accept: text/event-stream``, pre-encoded."""
    stream_url: str = ""
    """Where streamed chats go, for providers that use another URL than ``chat_url`` (Gemini)."""
