"""Keeping credentials out of every message that leaves the gateway.

Order matters: upstream text is redacted *before* it is cut short, or a secret straddling the cut would
leave a recognisable piece behind. :func:`redact_bytes` cleans a raw upstream body before any adapter
reads it; :func:`scrub` cleans a classified error (message, exception arguments, kept body) and then
bounds its message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stellwerk.errors import UpstreamError

__all__ = ["MESSAGE_LIMIT", "redact", "redact_bytes", "scrub", "summarize_body"]

_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|AIza|AKIA|xai|gsk)[-_][A-Za-z0-9_\-]{12,}|\bAIza[A-Za-z0-9_\-]{20,}")
_KEYLIKE_BYTES = re.compile(_KEYLIKE.pattern.encode())
MESSAGE_LIMIT = 2000
"""Characters of an upstream error message kept (after redaction)."""


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every known secret, and anything shaped like an API key, with ``[redacted]``."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def redact_bytes(data: bytes, secrets: Iterable[str] = ()) -> bytes:
    """:func:`redact` for a raw body (before it is parsed, summarized or cut)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            raw = secret.encode("utf-8", "replace")
            if raw in data:
                data = data.replace(raw, b"[redacted]")
    return _KEYLIKE_BYTES.sub(b"[redacted]", data)


def scrub(err: UpstreamError, secrets: Iterable[str] = ()) -> UpstreamError:
    """Redact an upstream error everywhere it keeps text, then bound its message; returns ``err``."""
    secrets = tuple(secrets)
    message = redact(err.message, secrets)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    err.message = message
    err.args = (message,)
    if err.body is not None:
        err.body = redact_bytes(err.body, secrets)
    return err


def summarize_body(body: bytes, limit: int = 300) -> str:
    """A short, printable excerpt of an upstream body for an error message (redact the body first)."""
    text = body[: limit * 2].decode("utf-8", "replace").strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
