"""The ``anthropic`` provider: Anthropic's Messages API (``POST {api_base}/v1/messages``).

``api_base`` is what the official SDK calls ``base_url`` (default
``https://api.anthropic.com``). Requests carry ``x-api-key`` and
``anthropic-version: 2023-06-01`` (a deployment's ``headers`` may set another
version, or ``anthropic-beta``). Translation lives in :mod:`.request` and
:mod:`.response`, error classes in :mod:`.errors`. Anthropic offers no
embeddings: asking this provider for them moves on to the next deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers.base import Endpoint, UpstreamRequest
from stellwerk.providers.endpoint import build_endpoint
from stellwerk.providers.shapes import parse_object

from .errors import classify_error, error_from_payload
from .request import to_messages_request
from .response import AnthropicStreamDecoder, to_completion
from .wire import API_BASE, API_VERSION

__all__ = ["AnthropicAdapter"]


class AnthropicAdapter:
    """Adapter for ``provider: anthropic``. ``clock`` (wall seconds) stamps the ``created`` of answers."""

    name = "anthropic"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        base = (deployment.api_base or API_BASE).rstrip("/")
        auth = [("x-api-key", deployment.api_key)] if deployment.api_key else []
        if not any(k.lower() == "anthropic-version" for k in deployment.headers):
            auth.append(("anthropic-version", API_VERSION))
        return build_endpoint(deployment, chat=f"{base}/v1/messages", embeddings="", models=f"{base}/v1/models",
                              auth=auth)

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest:
        wire = to_messages_request(body, deployment, stream)
        headers = endpoint.sse_headers if stream else endpoint.json_headers
        return UpstreamRequest("POST", endpoint.chat_url, headers, orjson.dumps(wire))

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        data = parse_object(body)
        if data.get("type") == "error":
            raise error_from_payload(data, 500, raw=body)
        if not isinstance(data.get("content"), list):
            raise UpstreamError(Outcome.RETRY_HERE, "upstream answer has no 'content' list", reason="malformed")
        return to_completion(data, int(self._clock())), None

    def stream_decoder(self, deployment: DeploymentConfig) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(int(self._clock()))

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest:
        raise UpstreamError(Outcome.MOVE_ON, "the anthropic provider does not offer embeddings")

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        raise UpstreamError(Outcome.MOVE_ON, "the anthropic provider does not offer embeddings")

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
