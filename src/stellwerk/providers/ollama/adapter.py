"""The ``ollama`` provider: Ollama's native API (not its OpenAI-compatible one).

=============  ==================================================
what           where
=============  ==================================================
chat, stream   ``POST {api_base}/api/chat`` (streams NDJSON)
embeddings     ``POST {api_base}/api/embed``
health probe   ``GET {api_base}/api/tags``
auth           none by default; ``api_key`` is sent as ``Authorization: Bearer``
               (ollama.com, or an Ollama behind an authenticating proxy)
=============  ==================================================

``api_base`` defaults to ``http://localhost:11434``. The native API is used
because it reports load and token counts, takes images as base64 lists and
continues a trailing assistant message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import UpstreamError
from stellwerk.providers.base import Endpoint, UpstreamRequest
from stellwerk.providers.endpoint import build_endpoint
from stellwerk.providers.shapes import parse_object

from .errors import classify_error
from .request import chat_body, embeddings_body
from .response import OllamaStreamDecoder, chat_completion, embeddings_answer

__all__ = ["OLLAMA_API_BASE", "OllamaAdapter"]

OLLAMA_API_BASE = "http://localhost:11434"


class OllamaAdapter:
    """Adapter for ``provider: ollama``. ``clock`` dates answers that carry no ``created_at``."""

    name = "ollama"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        base = (deployment.api_base or OLLAMA_API_BASE).rstrip("/")
        auth = [("authorization", f"Bearer {deployment.api_key}")] if deployment.api_key else []
        return build_endpoint(deployment, chat=f"{base}/api/chat", embeddings=f"{base}/api/embed",
                              models=f"{base}/api/tags", auth=auth, stream_accept="application/x-ndjson",
                              secrets=[deployment.api_key])

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest:
        wire = orjson.dumps(chat_body(body, deployment.model, stream))
        return UpstreamRequest("POST", endpoint.chat_url, endpoint.sse_headers if stream else endpoint.json_headers,
                               wire)

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return chat_completion(parse_object(body), deployment.model, self._clock), None

    def stream_decoder(self, deployment: DeploymentConfig) -> OllamaStreamDecoder:
        return OllamaStreamDecoder(deployment.model, self._clock)

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest:
        wire = orjson.dumps(embeddings_body(body, deployment.model))
        return UpstreamRequest("POST", endpoint.embeddings_url, endpoint.json_headers, wire)

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return embeddings_answer(parse_object(body), deployment.model), None

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
