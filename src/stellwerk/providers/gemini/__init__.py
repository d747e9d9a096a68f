"""The ``gemini`` provider: Google AI Studio's Gemini API."""

from .adapter import GEMINI_API_BASE, GeminiAdapter
from .errors import classify_error
from .response import GeminiStreamDecoder

__all__ = ["GEMINI_API_BASE", "GeminiAdapter", "GeminiStreamDecoder", "classify_error"]
