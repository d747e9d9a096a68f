"""Provider adapters, one package per wire protocol, looked up by the config's ``provider`` name."""

from __future__ import annotations

from collections.abc import Callable

from stellwerk.config import DeploymentConfig

from .anthropic import AnthropicAdapter
from .base import Adapter, Chunk, ChunkView, Endpoint, StreamDecoder, UpstreamRequest, chunk_dict
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter

__all__ = [
    "Adapter",
    "Chunk",
    "ChunkView",
    "Endpoint",
    "StreamDecoder",
    "UpstreamRequest",
    "chunk_dict",
    "deployment_problems",
    "get_adapter",
    "provider_names",
]


def _bedrock() -> Adapter:
    """Imported on first use: signing needs botocore, an optional extra (``stellwerk[bedrock]``)."""
    from .bedrock import BedrockAdapter

    return BedrockAdapter()


_FACTORIES: dict[str, Callable[[], Adapter]] = {
    "openai": OpenAIAdapter,
    "azure": lambda: OpenAIAdapter(azure=True),
    "anthropic": AnthropicAdapter,
    "gemini": GeminiAdapter,
    "ollama": OllamaAdapter,
    "bedrock": _bedrock,
}


def provider_names() -> list[str]:
    return sorted(_FACTORIES)


def get_adapter(name: str) -> Adapter:
    """A new adapter for a provider name (``KeyError`` for an unknown one; the config check prevents that)."""
    return _FACTORIES[name]()


def deployment_problems(deployment: DeploymentConfig, probes_models: bool = False) -> list[str]:
    """Provider-specific config rules (``key: what was expected``, keys relative to the deployment).

    ``probes_models``: the deployment's model has active health checks of kind ``models``.
    """
    from .bedrock.checks import deployment_problems as bedrock_problems

    return bedrock_problems(deployment, probes_models)
