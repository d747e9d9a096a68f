"""What a cached answer is filed under: the exact key, the semantic context, the scope, the request's controls.

**The exact key** is a hash of the canonical form of everything that changes the answer: the whole
request body (model name, messages, tools, tool_choice, response_format, sampling parameters, stop,
seed, n, logit_bias, and any other field) except the fields that do not, :data:`IGNORED`, with JSON
keys sorted, plus the scope. A field this module does not know is part of the key: an unknown field
may change the answer, and a needless miss costs less than a wrong hit.

**The semantic context** is the same hash without the last user message's text: everything that must
match exactly for a semantic hit (system prompt, earlier turns, tools, parameters, scope).

**The scope** is who shares entries: the caller's key, the key's team, or everyone. A call without a
principal (gateway auth off) is :data:`ANONYMOUS`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from stellwerk.errors import InvalidRequestError

from ..call import Principal

__all__ = ["ANONYMOUS", "IGNORED", "Controls", "context_key", "exact_key", "last_user_text", "read_controls",
           "scope_id"]

IGNORED = frozenset({"user", "stream", "stream_options", "metadata"})
"""Request fields that do not change the answer, left out of every key."""

ANONYMOUS = "anonymous"
"""The scope of calls without a principal (while gateway auth is off, every caller)."""

_SORTED = orjson.OPT_SORT_KEYS


def scope_id(scope: str, principal: Principal | None) -> str:
    """``key:<id>``, ``team:<id>`` or ``global`` (a key without a team is its own team)."""
    if scope == "global":
        return "global"
    if principal is None:
        return ANONYMOUS
    if scope == "team" and principal.team is not None:
        return f"team:{principal.team}"
    return f"key:{principal.key_id}"


def _digest(scope: str, canonical: bytes) -> str:
    hasher = hashlib.blake2b(scope.encode(), digest_size=20, person=b"stellwerk-cache")
    hasher.update(b"\0")
    hasher.update(canonical)
    return hasher.hexdigest()


def exact_key(body: Mapping[str, Any], scope: str) -> str:
    """The key of an answer to ``body`` within ``scope`` (40 hex digits)."""
    kept = {k: v for k, v in body.items() if k not in IGNORED}
    return "x" + _digest(scope, orjson.dumps(kept, option=_SORTED))


def _last_user(messages: Any) -> int | None:
    if isinstance(messages, list):
        for i in range(len(messages) - 1, -1, -1):
            message = messages[i]
            if isinstance(message, dict) and message.get("role") == "user":
                return i
    return None


def last_user_text(body: Mapping[str, Any]) -> str | None:
    """The text of the conversation's last user message; None when it has none or has more than text."""
    messages: Any = body.get("messages")
    i = _last_user(messages)
    if i is None:
        return None
    content = messages[i].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "\n".join(str(p.get("text", "")) for p in content)
    return None  # images, audio, files: only an exact hit


def context_key(body: Mapping[str, Any], scope: str) -> str:
    """Everything but the last user message's text: what must match exactly for a semantic hit."""
    kept = {k: v for k, v in body.items() if k not in IGNORED}
    messages = list(kept.get("messages") or ())
    i = _last_user(messages)
    if i is not None:
        messages[i] = {k: v for k, v in messages[i].items() if k != "content"}
    kept["messages"] = messages
    return "c" + _digest(scope, orjson.dumps(kept, option=_SORTED))


class Controls(msgspec.Struct, frozen=True):
    """The request's cache controls: ``no-cache`` (do not read, do write), ``no-store`` (neither), a ttl."""

    read: bool = True
    write: bool = True
    ttl: float | None = None


DEFAULT = Controls()


def read_controls(headers: Mapping[str, str]) -> Controls:
    """``x-stellwerk-cache`` and ``Cache-Control`` (``no-cache``, ``no-store``) and ``x-stellwerk-cache-ttl``.

    An unknown ``x-stellwerk-cache`` value or a ttl that is not 1 to 86400 seconds is a 400; unknown
    ``Cache-Control`` directives are ignored (proxies add their own).
    """
    mine = headers.get("x-stellwerk-cache")
    standard = headers.get("cache-control")
    ttl_header = headers.get("x-stellwerk-cache-ttl")
    if mine is None and standard is None and ttl_header is None:
        return DEFAULT
    directives: set[str] = set()
    if mine is not None:
        value = mine.strip().lower()
        if value not in ("no-cache", "no-store"):
            raise InvalidRequestError(f"Invalid x-stellwerk-cache header {mine!r}: expected no-cache or no-store.")
        directives.add(value)
    if standard is not None:
        directives.update(part.strip().lower().split("=", 1)[0] for part in standard.split(","))
    ttl: float | None = None
    if ttl_header is not None:
        try:
            ttl = float(ttl_header)
        except ValueError:
            ttl = -1.0
        if not 1 <= ttl <= 86400:
            raise InvalidRequestError(f"Invalid x-stellwerk-cache-ttl header {ttl_header!r}: expected seconds "
                                      "between 1 and 86400.")
    no_store = "no-store" in directives
    return Controls(read=not no_store and "no-cache" not in directives, write=not no_store, ttl=ttl)
