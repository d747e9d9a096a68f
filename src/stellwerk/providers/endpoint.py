"""Building an :class:`~stellwerk.providers.base.Endpoint` from URLs and auth headers."""

from __future__ import annotations

from collections.abc import Sequence

from stellwerk.config import DeploymentConfig

from .base import Endpoint, encode_headers

__all__ = ["build_endpoint"]


def build_endpoint(deployment: DeploymentConfig, *, chat: str, embeddings: str, models: str,
                   auth: Sequence[tuple[str, str]] = (), stream: str = "", stream_accept: str = "text/event-stream",
                   secrets: Sequence[str | None] = ()) -> Endpoint:
    """Auth headers, ``content-type: application/json`` and the deployment's extra headers, pre-encoded.

    Every auth header value and every extra header value is a secret to redact, with ``secrets``.
    """
    headers = [*auth, ("content-type", "application/json")]
    headers.extend((k.lower(), v) for k, v in deployment.headers.items())
    hidden = tuple(s for s in (*secrets, *(v for _, v in auth), *deployment.headers.values()) if s)
    return Endpoint(chat, embeddings, models, tuple(headers), hidden,
                    encode_headers([*headers, ("accept", "application/json")]),
                    encode_headers([*headers, ("accept", stream_accept)]), stream)
