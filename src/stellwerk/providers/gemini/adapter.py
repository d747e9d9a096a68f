"""The ``gemini`` provider: Google AI Studio's Gemini API (``generativelanguage.googleapis.com``).

=============  ===========================================================================
what           where
=============  ===========================================================================
chat           ``POST {api_base}/models/{model}:generateContent``
stream         ``POST {api_base}/models/{model}:streamGenerateContent?alt=sse`` (SSE)
embeddings     ``POST {api_base}/models/{model}:embedContent`` (one input) /
               ``:batchEmbedContents`` (a list)
health probe   ``GET {api_base}/models/{model}``
auth           ``x-goog-api-key: {api_key}``
=============  ===========================================================================

``api_base`` defaults to ``https://generativelanguage.googleapis.com/v1beta``;
``model`` is a model id (``gemini-2.5-flash``) or a full resource name
(``tunedModels/my-model``).
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
from .response import GeminiStreamDecoder, chat_completion, embeddings_answer

__all__ = ["GEMINI_API_BASE", "GeminiAdapter", "model_path"]

GEMINI_API_BASE = "https://generativelanguage.googleapis.com/v1beta"


def model_path(model: str) -> str:
    """``gemini-2.5-flash`` → ``models/gemini-2.5-flash``; full resource names are kept."""
    return model if "/" in model else f"models/{model}"


class GeminiAdapter:
    """Adapter for ``provider: gemini``. ``clock`` (seconds since the epoch) dates the answers."""

    name = "gemini"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        root = f"{(deployment.api_base or GEMINI_API_BASE).rstrip('/')}/{model_path(deployment.model)}"
        auth = [("x-goog-api-key", deployment.api_key)] if deployment.api_key else []
        return build_endpoint(deployment, chat=f"{root}:generateContent", embeddings=f"{root}:batchEmbedContents",
                              models=root, auth=auth, stream=f"{root}:streamGenerateContent?alt=sse")

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest:
        wire = orjson.dumps(chat_body(body))
        if stream:
            return UpstreamRequest("POST", endpoint.stream_url, endpoint.sse_headers, wire)
        return UpstreamRequest("POST", endpoint.chat_url, endpoint.json_headers, wire)

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return chat_completion(parse_object(body), deployment.model, int(self._clock())), None

    def stream_decoder(self, deployment: DeploymentConfig) -> GeminiStreamDecoder:
        return GeminiStreamDecoder(deployment.model, self._clock)

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest:
        batched, wire = embeddings_body(body, model_path(deployment.model))
        url = endpoint.embeddings_url if batched else endpoint.embeddings_url.replace(
            ":batchEmbedContents", ":embedContent")
        return UpstreamRequest("POST", url, endpoint.json_headers, orjson.dumps(wire))

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return embeddings_answer(parse_object(body), deployment.model), None

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
