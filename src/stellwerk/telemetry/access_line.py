"""The :class:`Line` of the access log (re-exported by :mod:`stellwerk.telemetry.access_log`).

It lives in this module of its own because ``stellwerk.telemetry.access_log`` is compiled with mypyc, which
drops the keyword arguments of a class statement (``kw_only=True``); this module is not compiled.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Line"]


class Line(msgspec.Struct, kw_only=True):
    """One access-log line; the fields in their JSON order (unset ones are left out)."""

    time: str
    """ISO 8601 UTC with milliseconds."""
    request_id: str
    key_id: str | None = None
    """The gateway key's id (null when auth is off); never the key."""
    operation: str
    model: str
    deployment: str | None
    attempts: int
    """Upstream attempts, the answering one included."""
    status: int
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cache: str | None = None
    """``hit`` or ``semantic-hit`` when the response cache answered; null otherwise."""
    stream: bool
    route: str
    failed: list[str] | msgspec.UnsetType = msgspec.UNSET
    """``deployment: status or outcome`` of each failed attempt."""
    limited: str | msgspec.UnsetType = msgspec.UNSET
    """``key``, ``team`` or ``deployment``: the scope of the rate limit or budget that refused the request."""
    request: Any = msgspec.UNSET
    """The prompt (``messages`` or ``input``), with ``server.log_payloads`` only."""
    response: Any = msgspec.UNSET
    """The answer's text, with ``server.log_payloads`` only."""
