"""The gateway server: OpenAI-compatible HTTP API over the router."""

from .app import GatewayApp
from .serve import Gateway, run_gateway

__all__ = ["Gateway", "GatewayApp", "run_gateway"]
