"""The ``ollama`` provider: Ollama's native chat and embed API."""

from .adapter import OLLAMA_API_BASE, OllamaAdapter
from .errors import classify_error
from .response import OllamaStreamDecoder

__all__ = ["OLLAMA_API_BASE", "OllamaAdapter", "OllamaStreamDecoder", "classify_error"]
