"""The ``bedrock`` provider: Amazon Bedrock's Converse API.

=============  =================================================================================
what           where
=============  =================================================================================
chat           ``POST {api_base}/model/{model}/converse`` (JSON)
stream         ``POST {api_base}/model/{model}/converse-stream`` (``application/vnd.amazon.eventstream``)
embeddings     not supported (``MOVE_ON``): Bedrock embeds through model-specific ``InvokeModel`` bodies
health probe   ``GET https://bedrock.{region}.amazonaws.com/foundation-models/{model}``
auth           SigV4 (service ``bedrock``) with the deployment's AWS keys or botocore's default
               chain; or, with ``api_key``, a Bedrock API key as ``Authorization: Bearer``
=============  =================================================================================

``api_base`` defaults to ``https://bedrock-runtime.{region}.amazonaws.com``;
``model`` is a model id, an inference profile id or an ARN (URL-encoded into
the path). SigV4 signing needs botocore (``pip install 'stellwerk[bedrock]'``),
imported only when a deployment signs; every request is signed anew at the
injected ``clock``'s time.

State: one signer per SigV4 deployment (its resolved credentials), made by
:meth:`BedrockAdapter.endpoint` when the deployment is prepared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from stellwerk.config import DeploymentConfig
from stellwerk.errors import ConfigError, UpstreamError
from stellwerk.providers.base import Endpoint, UpstreamRequest
from stellwerk.providers.canonical import unsupported
from stellwerk.providers.endpoint import build_endpoint
from stellwerk.providers.shapes import digest, parse_object

from .checks import BOTOCORE_MISSING
from .errors import classify_error
from .request import converse_body
from .response import BedrockStreamDecoder, converse_completion

if TYPE_CHECKING:
    from .signing import SigV4Signer

__all__ = ["EVENTSTREAM", "BedrockAdapter"]

EVENTSTREAM = "application/vnd.amazon.eventstream"


class BedrockAdapter:
    """Adapter for ``provider: bedrock``. ``clock`` (seconds since the epoch) signs and dates requests."""

    name = "bedrock"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._signers: dict[str, SigV4Signer] = {}

    def _signer(self, deployment: DeploymentConfig) -> SigV4Signer:
        signer = self._signers.get(deployment.id)
        if signer is None:
            try:
                from .signing import SigV4Signer, resolve_credentials
            except ImportError:
                raise ConfigError([f"deployment '{deployment.id}': {BOTOCORE_MISSING}"]) from None
            signer = SigV4Signer(resolve_credentials(deployment), deployment.region or "us-east-1", self._clock)
            self._signers[deployment.id] = signer
        return signer

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        region = deployment.region or "us-east-1"
        base = (deployment.api_base or f"https://bedrock-runtime.{region}.amazonaws.com").rstrip("/")
        model = quote(deployment.model, safe="")
        models = (f"{base}/foundation-models/{model}" if deployment.api_base
                  else f"https://bedrock.{region}.amazonaws.com/foundation-models/{model}")
        auth: list[tuple[str, str]] = []
        secrets: tuple[str, ...] = ()
        if deployment.api_key:
            auth.append(("authorization", f"Bearer {deployment.api_key}"))
        else:
            secrets = self._signer(deployment).secrets()
        return build_endpoint(deployment, chat=f"{base}/model/{model}/converse", embeddings="", models=models,
                              auth=auth, stream=f"{base}/model/{model}/converse-stream", stream_accept=EVENTSTREAM,
                              secrets=[deployment.api_key, *secrets])

    def chat_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any], stream: bool
    ) -> UpstreamRequest:
        wire = orjson.dumps(converse_body(body))
        url = endpoint.stream_url if stream else endpoint.chat_url
        if deployment.api_key:
            return UpstreamRequest("POST", url, endpoint.sse_headers if stream else endpoint.json_headers, wire)
        headers = [*endpoint.headers, ("accept", EVENTSTREAM if stream else "application/json")]
        return UpstreamRequest("POST", url, self._signer(deployment).sign("POST", url, headers, wire), wire)

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        now = self._clock()
        return converse_completion(parse_object(body), deployment.model, int(now), digest(deployment.id, now)), None

    def stream_decoder(self, deployment: DeploymentConfig) -> BedrockStreamDecoder:
        return BedrockStreamDecoder(deployment.model, self._clock)

    def embeddings_request(
        self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any]
    ) -> UpstreamRequest:
        raise unsupported("bedrock", "embeddings through Stellwerk (Converse has none)")

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        raise unsupported("bedrock", "embeddings through Stellwerk (Converse has none)")

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return classify_error(status, headers, body)
