"""The gateway's HTTP application: OpenAI-compatible routes over a :class:`~stellwerk.routing.Router`.

=======  ==========================  ==========================================
method   path                        answer
=======  ==========================  ==========================================
POST     /v1/chat/completions        chat completion, JSON or SSE stream
POST     /v1/completions             legacy completions, by translation to chat (completions_api.py)
POST     /v1/responses               the Responses API, by translation to chat (responses_api.py)
POST     /v1/embeddings              embeddings
POST     /v1/messages                Anthropic Messages API: a message or its SSE events (anthropic_api.py)
POST     /v1/messages/count_tokens   Anthropic token count (an estimate)
GET      /v1/models                  the configured model names (Anthropic's shape with ``anthropic-version``)
GET      /v1/models/{id}             one model (``models.retrieve``); 404 naming it otherwise
GET      /healthz                    200 once the server is ready
GET      /metrics                    Prometheus metrics (OpenMetrics when the scraper asks for it)
GET      /ui                         the dashboard (console.py; with /admin/events and /admin/timeline)
GET      /admin/stats                per-deployment counters (JSON)
GET      /admin/health               breakers, budgets, passive and active health (JSON)
GET      /admin/cluster              this replica, Redis up or down, the replicas seen (id, version, config
                                     version, last heartbeat)
GET      /admin/route?model=M        dry run: where a sample request would go, and why
                                     (``&prompt=...``; or POST a chat request body)
GET      /admin/experiments          A/B tests and canaries: counts, latency, errors, cost per variant
GET      /admin/cache                response cache: entries, bytes, hits, misses, saved cost per model
DELETE   /admin/cache                flush the response cache (``?model=M``: one model's entries)
PUT      /admin/models/M/strategy    change a model's strategy options (JSON body) without restart
PUT      /admin/deployments/D/weight change a deployment's weight (``{"weight": 3}``)
PUT      /admin/deployments/D        drain a deployment (``{"enabled": false}``) or bring it back
*        /admin/config...            versions, diff, rollback, reload, whole-config PUT (config_api.py)
*        /admin/keys, /admin/keys/ID, /admin/teams, /admin/spend: keys, teams and spend (admin_keys.py)
=======  ==========================  ==========================================

With ``server.master_key`` set, every request but ``/healthz`` needs a valid
gateway key, checked here first (a 401 comes before any check of the body, so an
unknown caller learns nothing about models or parameters); the call carries the
principal into the pipeline, whose auth stage checks its models. Every ``/admin/*`` request the master key or a key with the
``admin`` scope: 401 ``invalid_api_key`` otherwise, 403 for a key without it.

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
from typing import Any, Final
from urllib.parse import unquote

import orjson

from stellwerk import __version__
from stellwerk.errors import ConfigError, InvalidRequestError, PermissionDeniedError, StellwerkError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.keys.governance import Governance
from stellwerk.pipeline import Operation, Principal, is_result
from stellwerk.pipeline.auth import principal_of
from stellwerk.providers.anthropic.outbound import error_body as anthropic_body
from stellwerk.routing import Router
from stellwerk.state import CacheUnavailable
from stellwerk.state.interfaces import KeyValue
from stellwerk.telemetry import StatsCollector
from stellwerk.telemetry.prometheus import Metrics

from .admin_keys import KeysAdmin
from .anthropic_api import AnthropicAPI, anthropic_error
from .completions_api import CompletionsAPI
from .config_api import ConfigAPI
from .console import Console
from .depth import too_deep
from .errors import answer_headers, error_body, error_response
from .models import ModelList
from .responses_api import ResponsesAPI

__all__ = ["GatewayApp"]

log = logging.getLogger("stellwerk.gateway")

_REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
Route = Callable[[Request, str], Awaitable[Response | StreamingResponse]]
_CALLER_KEYED: Final = frozenset({"/v1/chat/completions", "/chat/completions", "/v1/embeddings", "/embeddings", "/v1/messages",
                           "/messages", "/v1/completions", "/completions", "/v1/responses", "/responses"})
"""Routes that read the caller's key themselves (``_caller``) and hand it to the call; every other path but
``_OPEN`` is checked in ``__call__`` (so a route added later is keyed by default)."""
_OPEN: Final = frozenset({"/healthz"})


class GatewayApp:
    """``await app(request)`` answers one HTTP request."""

    def __init__(self, router: Router, stats: StatsCollector | None = None, metrics: Metrics | None = None,
                 console: Console | None = None, config_api: ConfigAPI | None = None,
                 governance: Governance | None = None, public_metrics: bool = False) -> None:
        """``public_metrics``: ``/metrics`` needs no key (``server.metrics_public``)."""
        self.router = router
        self._open = _OPEN | {"/metrics"} if public_metrics else _OPEN
        self.config_api = config_api
        self.stats = stats
        self.metrics = metrics
        self.keyring = governance.keyring if governance is not None and governance.enforced else None
        """The keys requests are checked against (None: auth is off)."""
        self.started = time.time()
        self.models = ModelList(router)
        routes: dict[str, dict[str, Route]] = {
            "/v1/chat/completions": {"POST": self.chat_completions},
            "/v1/embeddings": {"POST": self.embeddings},
            "/v1/models": {"GET": self.models.list},
            "/healthz": {"GET": self.healthz},
            "/metrics": {"GET": self.prometheus},
            "/admin/stats": {"GET": self.admin_stats},
            "/admin/health": {"GET": self.admin_health},
            "/admin/cluster": {"GET": self.admin_cluster},
            "/admin/route": {"GET": self.admin_route, "POST": self.admin_route},
            "/admin/experiments": {"GET": self.admin_experiments},
            "/admin/cache": {"GET": self.admin_cache, "DELETE": self.admin_cache},
        }
        if config_api is not None:
            routes["/admin/config"] = {"GET": config_api.show, "PUT": config_api.replace}
            routes["/admin/config/versions"] = {"GET": config_api.versions}
            routes["/admin/config/diff"] = {"GET": config_api.diff}
            routes["/admin/config/rollback"] = {"POST": config_api.rollback}
            routes["/admin/config/reload"] = {"POST": config_api.reload}
        if console is not None:
            for path in console.files:
                routes[path] = {"GET": console.static}
            routes["/admin/events"] = {"GET": console.events}
            routes["/admin/timeline"] = {"GET": console.timeline}
        anthropic = AnthropicAPI(router, self._json, self._timeout, self._caller)
        routes["/v1/completions"] = {"POST": CompletionsAPI(router, self._json, self._timeout, self._caller).completions}
        kept = governance.store if governance is not None and isinstance(governance.store, KeyValue) else None
        routes["/v1/responses"] = {"POST": ResponsesAPI(router, self._json, self._timeout, self._caller,
                                                        kept=kept).create}
        routes["/v1/messages"] = {"POST": anthropic.messages}
        routes["/v1/messages/count_tokens"] = {"POST": anthropic.count_tokens}
        for path in ("/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/models", "/v1/messages",
                     "/v1/messages/count_tokens"):
            routes[path[3:]] = routes[path]
        self._keys_admin: KeysAdmin | None = None
        if governance is not None:
            admin = self._keys_admin = KeysAdmin(governance, router.accounts)
            routes["/admin/keys"] = {"GET": admin.keys, "POST": admin.keys}
            routes["/admin/teams"] = {"GET": admin.teams, "POST": admin.teams}
            routes["/admin/spend"] = {"GET": admin.spend}
        self._routes = routes

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        rid = request.headers.get("x-request-id")
        if rid is None or not _REQUEST_ID.match(rid):
            rid = os.urandom(12).hex()
        path = request.path
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        if (self.keyring is not None and path not in _CALLER_KEYED and path not in self._open
                and not (path == "/ui" or path.startswith("/ui/"))):  # the dashboard's files: no data, login inside
            refused = self._refused(request, path, rid)
            if refused is not None:
                return refused
        if path.startswith("/admin/keys/") and self._keys_admin is not None:
            try:
                return await self._keys_admin.key(request, path[len("/admin/keys/"):], rid)
            except StellwerkError as err:
                return error_response(err, [("x-request-id", rid)])
        methods = self._routes.get(path)
        if methods is None and path.startswith("/admin/") and request.method == "PUT":
            try:
                return await self.admin_update(request, path, rid)
            except StellwerkError as err:
                return error_response(err, [("x-request-id", rid)])
        if methods is None:
            try:
                return self._unrouted(request, path, rid)
            except StellwerkError as err:
                return error_response(err, [("x-request-id", rid)])
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

    def _unrouted(self, request: Request, path: str, rid: str) -> Response:
        """Paths with a parameter (``/v1/models/{id}``), else 404 in the shape of the API the path belongs to."""
        for prefix in ("/v1/models/", "/models/"):
            if path.startswith(prefix) and request.method == "GET":
                return self.models.one(request, unquote(path[len(prefix):]), rid)
        if path.startswith("/admin/config/versions/") and request.method == "GET" and self.config_api is not None:
            return self.config_api.version(request, path.rsplit("/", 1)[1], rid)
        message = f"Unknown path: {request.method} {request.path}"
        if path.startswith(("/v1/messages/", "/messages/")):
            return Response(404, orjson.dumps(anthropic_body(404, message)), [("x-request-id", rid)])
        return Response(404, error_body(404, message, code="not_found"), [("x-request-id", rid)])

    def _refused(self, request: Request, path: str, rid: str) -> Response | None:
        """401/403 for a request to ``/admin/*`` (master key or ``admin`` scope) or to any other path but
        ``/healthz`` and the routes that check their caller themselves (any valid key); None when it may pass."""
        assert self.keyring is not None
        try:
            principal = principal_of(self.keyring, request.headers)
            if path.startswith("/admin") and "admin" not in principal.scopes:
                raise PermissionDeniedError(f"The key {principal.key_id} has no 'admin' scope: /admin needs the "
                                            "master key or an admin key.")
        except StellwerkError as err:
            headers = [("x-request-id", rid)]
            return anthropic_error(err, headers) if "/messages" in path else error_response(err, headers)
        return None

    def _caller(self, request: Request) -> Principal | None:
        """The request's principal when auth is on (401 first: before the body is read or validated)."""
        return principal_of(self.keyring, request.headers) if self.keyring is not None else None

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
        principal = self._caller(request)
        call = self.router.call(Operation.CHAT, self._json(request), request_id=rid, timeout=self._timeout(request),
                                headers=request.headers, principal=principal)
        reply = await self.router.handle(call)
        if is_result(reply):
            return Response(200, reply.body, answer_headers(reply, call), head=reply.head)
        return StreamingResponse(reply.sse(), headers=answer_headers(reply, call), head=reply.head)

    async def embeddings(self, request: Request, rid: str) -> Response | StreamingResponse:
        principal = self._caller(request)
        call = self.router.call(Operation.EMBEDDINGS, self._json(request), request_id=rid,
                                timeout=self._timeout(request), headers=request.headers, principal=principal)
        reply = await self.router.handle(call)
        if not is_result(reply):
            raise StellwerkError("embeddings answered with a stream")  # a middleware's mistake: a 500, logged
        return Response(200, reply.body, answer_headers(reply, call), head=reply.head)

    async def healthz(self, request: Request, rid: str) -> Response:
        return Response(200, b'{"status":"ok"}', [("x-request-id", rid)])

    async def prometheus(self, request: Request, rid: str) -> Response:
        if self.metrics is None:
            return Response(404, error_body(404, "Metrics are not collected by this app.", code="not_found"),
                            [("x-request-id", rid)])
        self.router.events.flush()  # records of this loop iteration count too
        body, content_type = self.metrics.render(request.headers.get("accept", ""))
        return Response(200, body, [("x-request-id", rid)], content_type=content_type)

    async def admin_health(self, request: Request, rid: str) -> Response:
        return Response(200, orjson.dumps(self.router.health()), [("x-request-id", rid)])

    async def admin_cluster(self, request: Request, rid: str) -> Response:
        cluster = self.router.cluster
        if cluster is None:
            body: dict[str, Any] = {"replica": f"local-{os.getpid()}", "redis": "off", "replicas_alive": 1,
                                    "replicas": [{"id": f"local-{os.getpid()}", "version": __version__,
                                                  "config_version": self.router.table.version,
                                                  "heartbeat": time.time(), "alive": True}]}
        else:
            body = await cluster.status()
        return Response(200, orjson.dumps(body), [("x-request-id", rid)])

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
                self.router.configuration.update_strategy_options(parts[2], body)
            except (ValueError, ConfigError) as refused:
                raise _bad(str(refused)) from None
            return Response(200, b'{"status":"updated"}', [("x-request-id", rid)])
        if len(parts) == 3 and parts[1] == "deployments" and self.config_api is not None:
            return self.config_api.deployment(request, parts[2], rid)
        if len(parts) == 4 and parts[1] == "deployments" and parts[3] == "weight":
            weight = body.get("weight") if isinstance(body, dict) else None
            if not isinstance(weight, (int, float)) or isinstance(weight, bool):
                raise _bad('Expected {"weight": NUMBER}.')
            try:
                self.router.configuration.set_weight(parts[2], float(weight))
            except KeyError:
                return Response(404, error_body(404, f"No deployment '{parts[2]}'.", code="not_found"),
                                [("x-request-id", rid)])
            except ValueError as err:
                raise _bad(str(err)) from None
            return Response(200, b'{"status":"updated"}', [("x-request-id", rid)])
        return Response(404, error_body(404, f"Unknown path: PUT {path}", code="not_found"), [("x-request-id", rid)])

    async def admin_stats(self, request: Request, rid: str) -> Response:
        self.router.events.flush()  # records of this loop iteration count too
        snapshot: dict[str, Any] = self.stats.snapshot() if self.stats is not None else {}
        snapshot["uptime_s"] = round(time.time() - self.started, 3)
        return Response(200, orjson.dumps(snapshot), [("x-request-id", rid)])


def _bad(message: str) -> StellwerkError:
    return InvalidRequestError(message)
