"""Provider adapters, one package per wire protocol, looked up by the config's ``provider`` name."""

from __future__ import annotations

from collections.abc import Callable

from .base import Adapter, Chunk, Endpoint, StreamDecoder, UpstreamRequest
from .openai import OpenAIAdapter

__all__ = ["Adapter", "Chunk", "Endpoint", "StreamDecoder", "UpstreamRequest", "get_adapter", "provider_names"]

_FACTORIES: dict[str, Callable[[], Adapter]] = {
    "openai": OpenAIAdapter,
    "azure": lambda: OpenAIAdapter(azure=True),
}


def provider_names() -> list[str]:
    return sorted(_FACTORIES)


def get_adapter(name: str) -> Adapter:
    """A new adapter for a provider name (``KeyError`` for an unknown one; the config check prevents that)."""
    return _FACTORIES[name]()
