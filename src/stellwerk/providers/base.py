"""The provider interface: pure translation between Stellwerk and one wire protocol.

Stellwerk's canonical format is OpenAI's Chat Completions format, as plain
dicts (so that every parameter a client sends passes through untouched). An
adapter translates that format to its provider's wire format and back, and
classifies the provider's errors into :class:`~stellwerk.errors.Outcome`s. It
never does I/O: the router sends the :class:`UpstreamRequest` it builds through
the injected transport and hands the answer back to the adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import UpstreamError

__all__ = [
    "Adapter",
    "ChoiceView",
    "Chunk",
    "ChunkView",
    "DeltaView",
    "Endpoint",
    "StreamDecoder",
    "UpstreamRequest",
    "chunk_dict",
    "encode_headers",
]

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


Chunk = tuple[dict[str, Any] | ChunkView, bytes | None]
"""A streamed chunk in OpenAI ``chat.completion.chunk`` shape: a dict, or (for chunks forwarded
unchanged) a :class:`ChunkView` with the original JSON bytes."""


def chunk_dict(chunk: Chunk) -> dict[str, Any]:
    """The chunk as a dict (parsing its bytes if it came as a view)."""
    data, raw = chunk
    if isinstance(data, dict):
        return data
    assert raw is not None
    parsed: dict[str, Any] = orjson.loads(raw)
    return parsed


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


def encode_headers(headers: Sequence[tuple[str, str]]) -> bytes:
    """Encode header pairs once, as the HTTP client sends them (``name: value\r\n`` each)."""
    return b"".join(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)


class StreamDecoder(Protocol):
    """Turns the bytes of a streamed response into chunks."""

    done: bool
    """True once the provider signalled the end of the stream."""

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume bytes; return the complete chunks they finish. Raises UpstreamError on an error event."""
        ...


class Adapter(Protocol):
    """One wire protocol. Implementations are stateless; all methods are pure."""

    name: str

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint: ...

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest: ...

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        """Parse a successful answer into an OpenAI ``chat.completion`` dict (and its bytes, if unchanged)."""
        ...

    def stream_decoder(self, deployment: DeploymentConfig) -> StreamDecoder:
        """A new decoder for one streamed answer (decoders keep per-stream state)."""
        ...

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest: ...

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]: ...

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        """Turn a non-2xx answer into a classified error."""
        ...
