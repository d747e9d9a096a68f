"""The outbound HTTP client the configuration asks for: response size limit, proxies, private CAs."""

from __future__ import annotations

from collections.abc import Iterable

from stellwerk.config import Config, DeploymentConfig
from stellwerk.http.client import HTTPClient
from stellwerk.providers.base import Endpoint

__all__ = ["build_client"]


def build_client(config: Config, deployments: Iterable[tuple[DeploymentConfig, Endpoint]] = ()) -> HTTPClient:
    """The client for ``config``; ``deployments`` pairs each deployment with its endpoint (the URLs it calls)."""
    return HTTPClient(max_response_size=config.server.max_response_size)
