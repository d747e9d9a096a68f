"""Vocabulary of Anthropic's Messages API shared by both directions of translation.

The ``anthropic`` provider translates OpenAI → Anthropic requests and Anthropic →
OpenAI answers; the Anthropic-compatible front door does the inverse. The
tables and conversions both need live here once, each with its inverse.

Reference: https://docs.claude.com/en/api/messages, https://docs.claude.com/en/api/errors.
"""

from __future__ import annotations

from typing import Any

from stellwerk.providers import shapes

__all__ = [
    "API_BASE",
    "API_VERSION",
    "ERROR_STATUS",
    "FINISH_TO_STOP",
    "STOP_TO_FINISH",
    "anthropic_usage",
    "as_object",
    "error_type_for",
    "image_url",
    "openai_usage",
]

API_BASE = "https://api.anthropic.com"
API_VERSION = "2023-06-01"

STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
"""Anthropic ``stop_reason`` → OpenAI ``finish_reason``."""

FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI ``finish_reason`` → Anthropic ``stop_reason`` (the inverse, where one exists)."""

ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""Anthropic error ``type`` → the HTTP status it comes with (stream ``error`` events carry only the type)."""

_STATUS_ERROR = {status: etype for etype, status in ERROR_STATUS.items()} | {503: "overloaded_error"}


def error_type_for(status: int) -> str:
    """The Anthropic error ``type`` for an HTTP status (``api_error`` for other 5xx, else ``invalid_request_error``)."""
    return _STATUS_ERROR.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Anthropic ``usage`` → OpenAI ``usage``.

    Anthropic counts cached input apart: the prompt is ``input_tokens +
    cache_read_input_tokens + cache_creation_input_tokens``, of which the cache
    reads are OpenAI's ``prompt_tokens_details.cached_tokens``.
    """
    cache_read = _count(usage.get("cache_read_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + cache_read + _count(usage.get("cache_creation_input_tokens"))
    return shapes.usage(prompt, _count(usage.get("output_tokens")), cache_read)


def anthropic_usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, int]:
    """OpenAI-style counts → Anthropic ``usage`` (cache writes are not known, so counted as input)."""
    cached = min(cached_tokens, prompt_tokens)
    return {"input_tokens": prompt_tokens - cached, "output_tokens": completion_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def image_url(source: Any) -> str | None:
    """An Anthropic image ``source`` → an OpenAI ``image_url`` URL (``None`` for sources it cannot express)."""
    if not isinstance(source, dict):
        return None
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    media_type, data = source.get("media_type"), source.get("data")
    if source.get("type") == "base64" and isinstance(media_type, str) and isinstance(data, str):
        return f"data:{media_type};base64,{data}"
    return None


def as_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (for reading optional nested fields)."""
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
