"""Keeping web pages away from the gateway: ``Host`` checks, no simple cross-site POSTs, CORS by allow-list.

Until the admin API has authentication, a page the user visits could reach a gateway on localhost
two ways, and this wrapper (``BrowserGuard(app, ...)``, around the whole app) closes both:

* **DNS rebinding** (``evil.example`` re-pointed at 127.0.0.1): the browser then sends
  ``Host: evil.example``. Requests are refused (403) unless ``Host`` is an IP address, ``localhost``,
  the configured listen host, or matches ``server.allowed_hosts`` (rebinding needs a name, so IP
  literals are safe). A request without ``Host`` (HTTP/1.0 tools) is let through.
* **Simple cross-site requests** (a ``no-cors`` POST needs no preflight): JSON routes sent as
  ``text/plain``, form or multipart are refused (415), and a request that may change state (any
  method but GET/HEAD) carrying an ``Origin`` not in ``server.cors_origins`` is refused (403).

Origins in ``server.cors_origins`` get CORS: preflights (``OPTIONS``) are answered, answers carry
``access-control-allow-origin``. The cost on the hot path is a few dictionary look-ups.

``public_paths`` (``/metrics`` with ``server.metrics_public``) skip the ``Host`` check: scrapers name the
gateway by whatever DNS name they use, and those answers are read-only.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Sequence
from typing import Final

from stellwerk.http.server import Handler, Request, Response, StreamingResponse

from .errors import http_layer_error

__all__ = ["BrowserGuard"]

_SIMPLE_TYPES: Final = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_METHODS: Final = "GET, POST, PUT, OPTIONS"
_TOKENS: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~, -]{0,1024}$")
_EXPOSE: Final = ("x-request-id, x-stellwerk-deployment, x-stellwerk-attempts, x-stellwerk-cost, "
                  "x-stellwerk-route, x-stellwerk-config-version, retry-after")
_CACHE: Final = 256
"""Host values remembered as accepted (bounded: hostile clients can send any number of names)."""


class BrowserGuard:
    """``BrowserGuard(app, listen_host=..., allowed_hosts=..., cors_origins=...)``: a handler around ``app``."""

    def __init__(self, app: Handler, *, listen_host: str = "127.0.0.1", allowed_hosts: Sequence[str] = (),
                 cors_origins: Sequence[str] = (), public_paths: Sequence[str] = ()) -> None:
        self._app = app
        self._public = frozenset(public_paths)
        names = {"localhost", listen_host.lower().rstrip(".")}
        self._names = frozenset(h.lower().rstrip(".") for h in allowed_hosts if not h.startswith("*")) | names
        self._suffixes = tuple(h[1:].lower() for h in allowed_hosts if h.startswith("*."))
        self._any_host = "*" in allowed_hosts
        self._origins = frozenset(o.lower().rstrip("/") for o in cors_origins)
        self._any_origin = "*" in cors_origins
        self._accepted: set[str] = set()

    def __call__(self, request: Request) -> Awaitable[Response | StreamingResponse]:
        """Not a coroutine itself: the common case hands back the app's own awaitable (no extra frame)."""
        headers = request.headers
        host = headers.get("host")
        if (host is not None and host not in self._accepted and not self._host_ok(host)
                and not (self._public and request.method in _SAFE_METHODS and request.path in self._public)):
            return _refuse(403, f"Host '{host[:100]}' is not an address of this gateway; add it to "
                                f"server.allowed_hosts if it is.", request.path)
        method = request.method
        if method not in _SAFE_METHODS and method != "OPTIONS":
            kind = headers.get("content-type")
            if kind is not None and kind.split(";", 1)[0].strip().lower() in _SIMPLE_TYPES:
                return _refuse(415, "Send JSON bodies with 'Content-Type: application/json'.", request.path)
        origin = headers.get("origin")
        if origin is None:
            if method == "OPTIONS":
                return _ready(Response(204, b"", [("allow", _METHODS)], content_type="text/plain"))
            return self._app(request)
        seen = origin.lower().rstrip("/")
        if host is not None and seen.partition("://")[2] == host.lower() and seen.startswith(("http://", "https://")):
            return self._app(request)  # same origin (the dashboard): the Host check above stands for it
        allowed = self._any_origin or seen in self._origins
        if method == "OPTIONS":
            if not allowed:
                return _refuse(403, "This origin may not call the gateway (server.cors_origins).", request.path)
            return _ready(self._preflight(origin, headers.get("access-control-request-headers", "")))
        if not allowed:
            if method not in _SAFE_METHODS:
                return _refuse(403, "This origin may not call the gateway (server.cors_origins).", request.path)
            return self._app(request)  # readable by the page only with CORS headers, which it does not get
        return self._with_cors(request, origin)

    async def _with_cors(self, request: Request, origin: str) -> Response | StreamingResponse:
        response = await self._app(request)
        cors = [("access-control-allow-origin", origin), ("vary", "origin"), ("access-control-expose-headers", _EXPOSE)]
        response.headers = [*(response.headers or ()), *cors]
        return response

    def _host_ok(self, host: str) -> bool:
        name = host.lower()
        if name.startswith("["):
            name = name[1:name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.split(":", 1)[0]
        name = name.rstrip(".")
        try:
            ipaddress.ip_address(name)
            ok = True
        except ValueError:
            ok = self._any_host or name in self._names or name.endswith(self._suffixes)
        if ok and len(self._accepted) < _CACHE:
            self._accepted.add(host)
        return ok

    @staticmethod
    def _preflight(origin: str, requested: str) -> Response:
        allow_headers = requested if requested and _TOKENS.match(requested) else "authorization, content-type"
        return Response(204, b"", [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", _METHODS),
            ("access-control-allow-headers", allow_headers),
            ("access-control-max-age", "600"),
            ("vary", "origin"),
        ], content_type="text/plain")


async def _ready(response: Response) -> Response:
    return response


def _refuse(status: int, message: str, path: str) -> Awaitable[Response]:
    return _ready(Response(status, http_layer_error(status, message, path)))
