"""The edge: a client's request, validated, becomes a frozen :class:`~stellwerk.pipeline.Call`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from stellwerk.pipeline import Call, Facts, Operation, Principal
from stellwerk.pipeline.call import valid_traceparent
from stellwerk.validate import validate_chat, validate_embeddings

from .table import RoutingTable

__all__ = ["build_call"]


def build_call(table: RoutingTable, now: float, operation: Operation, body: Mapping[str, Any], *,
               request_id: str | None = None, timeout: float | None = None,
               headers: Mapping[str, str] | None = None, principal: Principal | None = None) -> Call:
    """Validate ``body`` (``InvalidRequestError`` naming the parameter) and build its call on ``table``.

    ``timeout`` (seconds) lowers the model's ``deadline``; ``headers`` are the client's (lower-case names).
    The body is copied once: the call owns it.
    """
    include_usage = False
    chars: int | None
    if operation is Operation.CHAT:
        model, stream, chars = validate_chat(body)
        request = dict(body)
        options = request.get("stream_options")
        if stream:
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
        else:
            request.pop("stream", None)
            request.pop("stream_options", None)
    else:
        model, stream, chars = validate_embeddings(body), False, None
        request = dict(body)
    limit = table.model(model).config.deadline
    headers = headers if headers is not None else {}
    traceparent = headers.get("traceparent")
    return Call(
        request_id=request_id or os.urandom(12).hex(), operation=operation, model=model, body=request,
        stream=stream, include_usage=include_usage, started=now,
        deadline=now + (limit if timeout is None else min(timeout, limit)), headers=headers,
        facts=Facts(request, headers, stream, chars), table=table, principal=principal,
        traceparent=valid_traceparent(traceparent) if traceparent is not None else None)
