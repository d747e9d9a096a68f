"""Token usage and its cost."""

from __future__ import annotations

from typing import Any

from .usage_record import Usage

__all__ = ["Usage", "estimate_tokens", "message_chars", "prompt_chars", "usage_from"]


def usage_from(data: Any) -> Usage | None:
    """Read an OpenAI-shaped ``usage`` object (``None`` when absent or malformed)."""
    if not isinstance(data, dict):
        return None
    prompt, completion = data.get("prompt_tokens"), data.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = data.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return Usage(prompt, completion, cached if isinstance(cached, int) else 0)


def estimate_tokens(text_chars: int) -> int:
    """A rough token count from characters (about 4 per token for English), for when upstreams report none."""
    return (text_chars + 3) // 4


def prompt_chars(body: dict[str, Any]) -> int:
    """Characters of the messages' text, and 4 for each message (the estimate's basis). Validation counts them on
    its way through a chat request (:func:`stellwerk.validate.validate_chat`), so a call's facts start with them."""
    total = 0
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            total += message_chars(message)
    return total


def message_chars(message: dict[str, Any]) -> int:
    """One message's part of :func:`prompt_chars`."""
    content = message.get("content")
    if isinstance(content, str):
        return len(content) + 4
    total = 4
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    total += len(text)
    return total
