"""Requests nested deeper than JSON encoders go: a 400 naming the parameter, not a 500.

Parsing accepts nesting that orjson cannot write back (it stops at 255 levels), so a pass-through
parameter nested 300 deep fails only when the upstream request is encoded. That failure is caught at
the gateway's edge and explained here: which parameter, and the limit. Nothing runs on the hot path.
"""

from __future__ import annotations

from typing import Any

import orjson

from stellwerk.http.server import Request, Response

from .errors import error_body

__all__ = ["MAX_DEPTH", "too_deep"]

MAX_DEPTH = 128
"""Nesting named as the culprit when encoding failed: orjson writes 255 levels in all, and an adapter
may wrap a parameter in a few more, so a value deeper than this is what broke it."""


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests deeper than ``limit`` levels (iterative: no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _too_deep_param(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for name, value in body.items():
        if isinstance(value, (dict, list)) and _depth_exceeds(value, MAX_DEPTH):
            return str(name)
    return None


def too_deep(request: Request, path: str, headers: list[tuple[str, str]]) -> Response | None:
    """The 400 answer when the request holds a too-deeply nested parameter; None when it does not."""
    try:
        param = _too_deep_param(orjson.loads(request.body))
    except orjson.JSONDecodeError:
        return None
    if param is None:
        return None
    message = (f"Invalid value for '{param}': nested more than {MAX_DEPTH} levels deep; the request cannot be "
               f"forwarded (JSON is encoded to at most 255 levels).")
    if path.rstrip("/").endswith(("/messages", "/messages/count_tokens")):
        body = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
    else:
        body = error_body(400, message, code="invalid_value", param=param)
    return Response(400, body, headers)
