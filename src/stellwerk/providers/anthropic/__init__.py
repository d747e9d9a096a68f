"""The ``anthropic`` provider (Anthropic's Messages API), and the translations the Anthropic front door reuses."""

from .adapter import AnthropicAdapter
from .errors import classify_error
from .response import AnthropicStreamDecoder

__all__ = ["AnthropicAdapter", "AnthropicStreamDecoder", "classify_error"]
