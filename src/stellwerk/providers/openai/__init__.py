"""The ``openai`` and ``azure`` providers: OpenAI's Chat Completions wire protocol."""

from .adapter import OpenAIAdapter, OpenAIStreamDecoder
from .errors import classify_error, parse_retry_after

__all__ = ["OpenAIAdapter", "OpenAIStreamDecoder", "classify_error", "parse_retry_after"]
