"""Provider adapters, one package per wire protocol, registered by the config's ``provider`` name.

``BUILTIN_PROVIDERS`` maps each name to a :class:`ProviderSpec`; the
composition root (:mod:`stellwerk.compose`) builds its registry from it, and
users add their own adapters there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from stellwerk.config import DeploymentConfig

from .anthropic import AnthropicAdapter
from .base import Adapter, Chunk, ChunkView, Endpoint, StreamDecoder, UpstreamRequest, chunk_dict
from .gemini import GeminiAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter

__all__ = [
    "BUILTIN_PROVIDERS",
    "Adapter",
    "Chunk",
    "ChunkView",
    "Endpoint",
    "ProviderSpec",
    "StreamDecoder",
    "UpstreamRequest",
    "chunk_dict",
    "get_adapter",
]


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    factory: Callable[[], Adapter]
    """Builds the adapter (pure translation: one instance serves every deployment of the provider)."""
    check: Callable[[DeploymentConfig, bool], list[str]] | None = None
    """Provider-specific config rules (``key: what was expected``, keys relative to the deployment); the flag
    says whether the deployment's model probes its models endpoint."""


def _bedrock() -> Adapter:
    """Imported on first use: signing needs botocore, an optional extra (``stellwerk[bedrock]``)."""
    from .bedrock import BedrockAdapter

    return BedrockAdapter()


def _problems(deployment: DeploymentConfig, probes_models: bool) -> list[str]:
    """The rules of the built-in providers (AWS fields belong to ``bedrock`` only)."""
    from .bedrock.checks import deployment_problems

    return deployment_problems(deployment, probes_models)


def _not_completions(deployment: DeploymentConfig, probes_models: bool) -> list[str]:
    problems = _problems(deployment, probes_models)
    if deployment.supports_completions:
        problems.append("supports_completions: only openai and azure deployments serve /completions")
    if deployment.native_responses:
        problems.append("native_responses: only openai and azure deployments serve the Responses API")
    return problems


def _azure_problems(deployment: DeploymentConfig, probes_models: bool) -> list[str]:
    problems = _problems(deployment, probes_models)
    if deployment.api_base is None:
        problems.append("api_base: required for provider 'azure' (https://RESOURCE.openai.azure.com)")
    return problems


BUILTIN_PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType({
    "openai": ProviderSpec(OpenAIAdapter, _problems),
    "azure": ProviderSpec(lambda: OpenAIAdapter(azure=True), _azure_problems),
    "anthropic": ProviderSpec(AnthropicAdapter, _not_completions),
    "gemini": ProviderSpec(GeminiAdapter, _not_completions),
    "ollama": ProviderSpec(OllamaAdapter, _not_completions),
    "bedrock": ProviderSpec(_bedrock, _not_completions),
})


def get_adapter(name: str) -> Adapter:
    """A new adapter of a built-in provider (``KeyError`` for an unknown name)."""
    return BUILTIN_PROVIDERS[name].factory()
