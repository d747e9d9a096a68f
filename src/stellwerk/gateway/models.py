"""The model list, in the shape of the API that asks: OpenAI's, or Anthropic's when ``anthropic-version`` is sent.

=======  ===================  =======================================================
GET      /v1/models           ``{"object": "list", "data": [{"id", "object": "model", ...}]}``; with an
                              ``anthropic-version`` header ``{"data": [{"type": "model", "id",
                              "display_name", "created_at"}], "has_more": false, "first_id", "last_id"}``
GET      /v1/models/{id}      one model in the same shapes; 404 naming the model otherwise
=======  ===================  =======================================================

The ids are the model names clients put in ``model`` (not the upstream names).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from stellwerk.errors import ModelNotFoundError
from stellwerk.http.server import Request, Response
from stellwerk.providers.anthropic.outbound import error_body as anthropic_error
from stellwerk.routing import Router

from .errors import error_body

__all__ = ["ModelList"]


class ModelList:
    def __init__(self, router: Router, clock: Any = time.time) -> None:
        self._router = router
        self._created = int(clock())
        self._bodies: tuple[int, bytes, bytes] | None = None
        """(table version, OpenAI body, Anthropic body): rebuilt when the routing table changes."""

    def _openai(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self._created, "owned_by": "stellwerk"}

    def _anthropic(self, name: str) -> dict[str, Any]:
        created = datetime.fromtimestamp(self._created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"type": "model", "id": name, "display_name": name, "created_at": created}

    def _lists(self) -> tuple[bytes, bytes]:
        table = self._router.table
        if self._bodies is None or self._bodies[0] != table.version:
            names = list(table.models)
            openai = orjson.dumps({"object": "list", "data": [self._openai(n) for n in names]})
            anthropic = orjson.dumps({"data": [self._anthropic(n) for n in names], "has_more": False,
                                      "first_id": names[0] if names else None,
                                      "last_id": names[-1] if names else None})
            self._bodies = (table.version, openai, anthropic)
        return self._bodies[1], self._bodies[2]

    async def list(self, request: Request, rid: str) -> Response:
        openai, anthropic = self._lists()
        return Response(200, anthropic if "anthropic-version" in request.headers else openai, [("x-request-id", rid)])

    def one(self, request: Request, name: str, rid: str) -> Response:
        """``GET /v1/models/{name}``."""
        headers = [("x-request-id", rid)]
        as_anthropic = "anthropic-version" in request.headers
        if name not in self._router.table.models:
            message = ModelNotFoundError(name, list(self._router.table.models)).message
            body = (orjson.dumps(anthropic_error(404, message)) if as_anthropic
                    else error_body(404, message, code="model_not_found", param="model"))
            return Response(404, body, headers)
        return Response(200, orjson.dumps(self._anthropic(name) if as_anthropic else self._openai(name)), headers)
