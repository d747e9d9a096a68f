"""The protocols the simulated provider speaks: a registry of :class:`~stellwerk.sim.protocol.Dialect` factories."""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Final

from stellwerk.sim.anthropic_wire import AnthropicDialect
from stellwerk.sim.bedrock_wire import BedrockDialect
from stellwerk.sim.gemini_wire import GeminiDialect
from stellwerk.sim.ollama_wire import OllamaDialect
from stellwerk.sim.openai_wire import OpenAIDialect
from stellwerk.sim.protocol import Dialect

__all__ = ["PROTOCOLS", "dialect_for"]

PROTOCOLS: Final[Mapping[str, Callable[[], Dialect]]] = types.MappingProxyType(
    {
        "openai": OpenAIDialect,
        "anthropic": AnthropicDialect,
        "gemini": GeminiDialect,
        "ollama": OllamaDialect,
        "bedrock": BedrockDialect,
    }
)
"""Protocol name -> dialect factory."""


def dialect_for(protocol: str) -> Dialect:
    """The dialect of ``protocol``; raises ValueError naming the known protocols."""
    try:
        factory = PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown protocol {protocol!r}; expected one of {sorted(PROTOCOLS)}") from None
    return factory()
