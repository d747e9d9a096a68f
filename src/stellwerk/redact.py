"""Keeping credentials out of every message that leaves the gateway."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["redact", "summarize_body"]

_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|AIza|AKIA|xai|gsk)[-_][A-Za-z0-9_\-]{12,}|\bAIza[A-Za-z0-9_\-]{20,}")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret, and anything shaped like an API key, with ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def summarize_body(body: bytes, limit: int = 300) -> str:
    """A short, printable excerpt of an upstream body for an error message."""
    text = body[: limit * 2].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
