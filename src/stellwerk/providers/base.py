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

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import UpstreamError

from .records import ChoiceView, ChunkView, DeltaView, Endpoint, UpstreamRequest

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
