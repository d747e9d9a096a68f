"""OpenAI Chat Completions wire protocol, for OpenAI and every compatible server.

Also Azure OpenAI's conventions (``provider: azure``): the deployment in the
path (``/openai/deployments/{model}/...``), the ``api-version`` query parameter
and the ``api-key`` header.

Since Stellwerk's canonical format *is* this wire format, translation is
nearly the identity: the model name is replaced by the deployment's, and
streams ask for a usage chunk so that cost is exact. Answers are forwarded as
the upstream's own bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Chunk, ChunkView, Endpoint, UpstreamRequest, encode_headers
from stellwerk.providers.sse import SSEParser

from .errors import classify_error, error_from_payload

__all__ = ["OpenAIAdapter", "OpenAIStreamDecoder"]

OPENAI_API_BASE = "https://api.openai.com/v1"
AZURE_API_VERSION = "2024-10-21"


_VIEW = msgspec.json.Decoder(ChunkView)


class OpenAIStreamDecoder:
    """``data: {chunk}`` events until ``data: [DONE]``; an ``error`` payload raises.

    Chunks come as :class:`~stellwerk.providers.base.ChunkView` with their bytes: the gateway
    forwards the bytes, and reads only the view (no dict is built on the hot path).
    """

    __slots__ = ("_sse", "done")

    def __init__(self) -> None:
        self._sse = SSEParser()
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        if not (self._sse.idle and data[-2:] == b"\n\n" and b"\r" not in data):
            return self._parsed(data)
        blocks = data[:-2].split(b"\n\n")  # the common read: whole events of one ``data:`` line each
        if data.count(b"\n") != 2 * len(blocks):
            return self._parsed(data)
        chunks: list[Chunk] = []
        decode = _VIEW.decode
        for block in blocks:
            if block[:6] != b"data: ":
                return self._parsed(data)  # another field, a comment, a blank event: the parser's way
            payload = block[6:]
            if payload == b"[DONE]":
                self.done = True
                break
            if not payload:
                continue
            try:  # _view written out: no call per event on the hot path
                view = decode(payload)
            except msgspec.DecodeError:
                raise _malformed() from None
            if view.choices is None and len(view.error) and bytes(view.error) != b"null":
                raise error_from_payload(orjson.loads(payload), 500)
            chunks.append((view, payload))
        return chunks

    def _parsed(self, data: bytes) -> list[Chunk]:
        """Any read, through the SSE parser (events split across reads, several lines, CRs, comments)."""
        chunks: list[Chunk] = []
        decode = _VIEW.decode
        for _event, payload in self._sse.feed(data):
            if payload == b"[DONE]":
                self.done = True
                break
            if payload:
                chunks.append((self._view(payload, decode), payload))
        return chunks

    @staticmethod
    def _view(payload: bytes, decode: Callable[[bytes], ChunkView]) -> ChunkView:
        try:
            view = decode(payload)
        except msgspec.DecodeError:
            raise _malformed() from None
        if view.choices is None and len(view.error) and bytes(view.error) != b"null":
            raise error_from_payload(orjson.loads(payload), 500)
        return view


def _malformed() -> UpstreamError:
    return UpstreamError(Outcome.RETRY_HERE, "upstream sent a malformed stream event")


class OpenAIAdapter:
    """Adapter for ``provider: openai`` (and, with ``azure=True``, ``provider: azure``)."""

    def __init__(self, azure: bool = False) -> None:
        self.azure = azure
        self.name = "azure" if azure else "openai"

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        base = (deployment.api_base or OPENAI_API_BASE).rstrip("/")
        headers: list[tuple[str, str]] = []
        if self.azure:
            version = deployment.api_version or AZURE_API_VERSION
            root = f"{base}/openai/deployments/{deployment.model}"
            chat, embeddings = (f"{root}/chat/completions?api-version={version}", f"{root}/embeddings?api-version={version}")
            models = f"{base}/openai/models?api-version={version}"
            if deployment.api_key:
                headers.append(("api-key", deployment.api_key))
        else:
            chat, embeddings, models = f"{base}/chat/completions", f"{base}/embeddings", f"{base}/models"
            if deployment.api_key:
                headers.append(("authorization", f"Bearer {deployment.api_key}"))
        headers.append(("content-type", "application/json"))
        headers.extend((k.lower(), v) for k, v in deployment.headers.items())
        secrets = tuple(s for s in (deployment.api_key, *deployment.headers.values()) if s)
        return Endpoint(chat, embeddings, models, tuple(headers), secrets,
                        encode_headers([*headers, ("accept", "application/json")]),
                        encode_headers([*headers, ("accept", "text/event-stream")]))

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest:
        wire = dict(body)
        if self.azure:
            wire.pop("model", None)
        else:
            wire["model"] = deployment.model
        if stream:
            wire["stream"] = True
            if deployment.stream_usage:
                options = wire.get("stream_options")
                wire["stream_options"] = {**options, "include_usage": True} if isinstance(options, dict) else {
                    "include_usage": True}
            return UpstreamRequest("POST", endpoint.chat_url, endpoint.sse_headers, orjson.dumps(wire))
        wire.pop("stream", None)
        wire.pop("stream_options", None)
        return UpstreamRequest("POST", endpoint.chat_url, endpoint.json_headers, orjson.dumps(wire))

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        data = _parse_object(body)
        if "error" in data and "choices" not in data:
            raise error_from_payload(data, 500)
        if not isinstance(data.get("choices"), list):
            raise UpstreamError(Outcome.RETRY_HERE, "upstream answer has no 'choices' list")
        return data, body

    def stream_decoder(self, deployment: DeploymentConfig) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder()

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest:
        wire = dict(body)
        if self.azure:
            wire.pop("model", None)
        else:
            wire["model"] = deployment.model
        return UpstreamRequest("POST", endpoint.embeddings_url, endpoint.json_headers, orjson.dumps(wire))

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        data = _parse_object(body)
        if not isinstance(data.get("data"), list):
            raise UpstreamError(Outcome.RETRY_HERE, "upstream embeddings answer has no 'data' list")
        return data, body

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(Outcome.RETRY_HERE, "upstream sent a malformed JSON body") from None
    if not isinstance(data, dict):
        raise UpstreamError(Outcome.RETRY_HERE, "upstream answer is not a JSON object")
    return data
