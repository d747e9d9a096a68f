"""The gateway's HTTP application: OpenAI-compatible routes over a :class:`~stellwerk.routing.Router`.

=======  ==========================  ==========================================
method   path                        answer
=======  ==========================  ==========================================
POST     /v1/chat/completions        chat completion, JSON or SSE stream
POST     /v1/embeddings              embeddings
POST     /v1/messages                Anthropic Messages API: a message or its SSE events (anthropic_api.py)
POST     /v1/messages/count_tokens   Anthropic token count (an estimate)
GET      /v1/models                  the configured model names
GET      /healthz                    200 once the server is ready
GET      /admin/stats                per-deployment counters (JSON)
GET      /admin/health               breakers, budgets, passive and active health (JSON)
GET      /admin/route?model=M        dry run: where a sample request would go, and why
                                     (``&prompt=...``; or POST a chat request body)
GET      /admin/experiments          A/B tests and canaries: counts, latency, errors, cost per variant
GET      /admin/cache                response cache: entries, bytes, hits, misses, saved cost per model
DELETE   /admin/cache                flush the response cache (``?model=M``: one model's entries)
PUT      /admin/models/M/strategy    change a model's strategy options (JSON body) without restart
PUT      /admin/deployments/D/weight change a deployment's weight (``{"weight": 3}``)
=======  ==========================  ==========================================

Each path also answers without the ``/v1`` prefix. Every answer carries
``x-request-id``; proxied answers carry ``x-stellwerk-deployment`` and
``x-stellwerk-attempts``; with a model's response cache on, chat answers carry ``x-stellwerk-cache``
(``hit``, ``semantic-hit`` with ``x-stellwerk-cache-score``, ``miss`` or ``bypass``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from stellwerk.errors import ConfigError, InvalidRequestError, StellwerkError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Operation, Result, merge_headers
from stellwerk.routing import Router
from stellwerk.state import CacheUnavailable
from stellwerk.telemetry import StatsCollector

from .anthropic_api import AnthropicAPI
from .depth import too_deep
from .errors import error_body, error_response

__all__ = ["GatewayApp"]

log = logging.getLogger("stellwerk.gateway")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
Route = Callable[[Request, str], Awaitable[Response | StreamingResponse]]


class GatewayApp:
    """``await app(request)`` answers one HTTP request."""

    def __init__(self, router: Router, stats: StatsCollector | None = None) -> None:
        self.router = router
        self.stats = stats
        self.started = time.time()
        self._models_body = orjson.dumps({
            "object": "list",
            "data": [{"id": name, "object": "model", "created": int(self.started), "owned_by": "stellwerk"}
                     for name in router.models],
        })
        routes: dict[str, dict[str, Route]] = {
            "/v1/chat/completions": {"POST": self.chat_completions},
            "/v1/embeddings": {"POST": self.embeddings},
            "/v1/models": {"GET": self.list_models},
            "/healthz": {"GET": self.healthz},
            "/admin/stats": {"GET": self.admin_stats},
            "/admin/health": {"GET": self.admin_health},
            "/admin/route": {"GET": self.admin_route, "POST": self.admin_route},
            "/admin/experiments": {"GET": self.admin_experiments},
            "/admin/cache": {"GET": self.admin_cache, "DELETE": self.admin_cache},
        }
        anthropic = AnthropicAPI(router, self._json, self._timeout)
        routes["/v1/messages"] = {"POST": anthropic.messages}
        routes["/v1/messages/count_tokens"] = {"POST": anthropic.count_tokens}
        for path in ("/v1/chat/completions", "/v1/embeddings", "/v1/models", "/v1/messages", "/v1/messages/count_tokens"):
            routes[path[3:]] = routes[path]
        self._routes = routes

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        rid = request.headers.get("x-request-id")
        if rid is None or not _REQUEST_ID.match(rid):
            rid = os.urandom(12).hex()
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        methods = self._routes.get(path)
        if methods is None and path.startswith("/admin/") and request.method == "PUT":
            try:
                return await self.admin_update(request, path, rid)
            except StellwerkError as err:
                return error_response(err, [("x-request-id", rid)])
        if methods is None:
            return Response(404, error_body(404, f"Unknown path: {request.method} {request.path}", code="not_found"),
                            [("x-request-id", rid)])
        route = methods.get(request.method)
        if route is None:
            allowed = ", ".join(methods)
            return Response(405, error_body(405, f"Method {request.method} is not allowed on {path}; use {allowed}.",
                                            code="method_not_allowed"), [("x-request-id", rid), ("allow", allowed)])
        try:
            return await route(request, rid)
        except StellwerkError as err:
            return error_response(err, [("x-request-id", rid)])
        except orjson.JSONEncodeError:  # a parameter nested deeper than the upstream request can be encoded
            answer = too_deep(request, path, [("x-request-id", rid)])
            if answer is None:
                raise
            return answer

    @staticmethod
    def _json(request: Request) -> Any:
        if not request.body:
            raise _bad("The request body is empty; expected a JSON object.")
        try:
            return orjson.loads(request.body)
        except orjson.JSONDecodeError as err:
            raise _bad(f"We could not parse the JSON body of your request: {err.msg} "
                       f"(line {err.lineno}, column {err.colno}).") from None

    @staticmethod
    def _timeout(request: Request) -> float | None:
        """``x-stellwerk-timeout``: the client lowers the request's deadline (seconds)."""
        value = request.headers.get("x-stellwerk-timeout")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 < seconds <= 86400:
            raise _bad(f"Invalid x-stellwerk-timeout header {value!r}: expected seconds between 0 and 86400.")
        return seconds

    async def chat_completions(self, request: Request, rid: str) -> Response | StreamingResponse:
        call = self.router.call(Operation.CHAT, self._json(request), request_id=rid, timeout=self._timeout(request),
                                headers=request.headers)
        reply = await self.router.handle(call)
        if isinstance(reply, Result):
            return _answer(reply)
        return StreamingResponse(reply.sse(), headers=merge_headers([
            ("x-request-id", rid),
            ("x-stellwerk-deployment", reply.deployment),
            ("x-stellwerk-attempts", str(reply.attempts)),
            ("x-stellwerk-route", reply.route),
        ], reply.headers))

    async def embeddings(self, request: Request, rid: str) -> Response | StreamingResponse:
        call = self.router.call(Operation.EMBEDDINGS, self._json(request), request_id=rid,
                                timeout=self._timeout(request), headers=request.headers)
        reply = await self.router.handle(call)
        if not isinstance(reply, Result):
            raise StellwerkError("embeddings answered with a stream")  # a middleware's mistake: a 500, logged
        return _answer(reply)

    async def list_models(self, request: Request, rid: str) -> Response:
        return Response(200, self._models_body, [("x-request-id", rid)])

    async def healthz(self, request: Request, rid: str) -> Response:
        return Response(200, b'{"status":"ok"}', [("x-request-id", rid)])

    async def admin_health(self, request: Request, rid: str) -> Response:
        return Response(200, orjson.dumps(self.router.health()), [("x-request-id", rid)])

    async def admin_route(self, request: Request, rid: str) -> Response:
        from urllib.parse import parse_qs

        query = parse_qs(request.query)
        body: dict[str, Any] | None = None
        if request.method == "POST":
            body = self._json(request)
            if not isinstance(body, dict):
                raise _bad("Expected a chat completion request body.")
        models = query.get("model")
        model = models[0] if models else (body or {}).get("model")
        if not isinstance(model, str):
            raise _bad("Name the model: GET /admin/route?model=NAME (&prompt=TEXT).")
        if body is None:
            prompt = (query.get("prompt") or ["Hello"])[0]
            body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        return Response(200, orjson.dumps(self.router.dry_run(model, body, request.headers)), [("x-request-id", rid)])

    async def admin_cache(self, request: Request, rid: str) -> Response:
        """GET: the response cache per model; DELETE: flush it (``?model=M``: one model's entries)."""
        from urllib.parse import parse_qs

        cache = self.router.response_cache
        if cache is None:
            return Response(404, error_body(404, "No model has a response cache (models[].cache.mode).",
                                            code="not_found"), [("x-request-id", rid)])
        if request.method == "GET":
            return Response(200, orjson.dumps(await cache.snapshot()), [("x-request-id", rid)])
        models = parse_qs(request.query).get("model")
        model = models[0] if models else None
        if model is not None and model not in self.router.models:
            return Response(404, error_body(404, f"No model '{model}'.", code="not_found"), [("x-request-id", rid)])
        try:
            flushed = await cache.flush(model)
        except CacheUnavailable:
            return Response(503, error_body(503, "The cache backend cannot be reached; nothing was flushed.",
                                            code="cache_unavailable"), [("x-request-id", rid)])
        return Response(200, orjson.dumps({"status": "flushed", "model": model, "entries": flushed}),
                        [("x-request-id", rid)])

    async def admin_experiments(self, request: Request, rid: str) -> Response:
        return Response(200, orjson.dumps(self.router.experiments()), [("x-request-id", rid)])

    async def admin_update(self, request: Request, path: str, rid: str) -> Response:
        parts = path.strip("/").split("/")
        body = self._json(request)
        if len(parts) == 4 and parts[1] == "models" and parts[3] == "strategy":
            if not isinstance(body, dict):
                raise _bad("Expected the strategy options as a JSON object.")
            try:
                self.router.update_strategy_options(parts[2], body)
            except (ValueError, ConfigError) as err:
                raise _bad(str(err)) from None
            return Response(200, b'{"status":"updated"}', [("x-request-id", rid)])
        if len(parts) == 4 and parts[1] == "deployments" and parts[3] == "weight":
            weight = body.get("weight") if isinstance(body, dict) else None
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise _bad('Expected {"weight": NUMBER}.')
            try:
                self.router.set_weight(parts[2], float(weight))
            except KeyError:
                return Response(404, error_body(404, f"No deployment '{parts[2]}'.", code="not_found"),
                                [("x-request-id", rid)])
            except ValueError as err:
                raise _bad(str(err)) from None
            return Response(200, b'{"status":"updated"}', [("x-request-id", rid)])
        return Response(404, error_body(404, f"Unknown path: PUT {path}", code="not_found"), [("x-request-id", rid)])

    async def admin_stats(self, request: Request, rid: str) -> Response:
        snapshot: dict[str, Any] = self.stats.snapshot() if self.stats is not None else {}
        snapshot["uptime_s"] = round(time.time() - self.started, 3)
        return Response(200, orjson.dumps(snapshot), [("x-request-id", rid)])


def _answer(result: Result) -> Response:
    return Response(200, result.body, merge_headers([
        ("x-request-id", result.request_id),
        ("x-stellwerk-deployment", result.deployment),
        ("x-stellwerk-attempts", str(result.attempts)),
        ("x-stellwerk-cost", f"{result.cost:.8f}"),
        ("x-stellwerk-route", result.route),
    ], result.headers))


def _bad(message: str) -> StellwerkError:
    return InvalidRequestError(message)
