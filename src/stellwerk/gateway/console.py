"""The dashboard: static files at ``/ui`` (inside the package: no CDN, no network), and its live data.

=======  ==================  ==========================================================
method   path                answer
=======  ==================  ==========================================================
GET      /ui                 the single page (``/ui/app.js``, ``/ui/app.css`` beside it)
GET      /admin/events       server-sent events: ``hello`` (config version, recent events), then one
                             ``request`` per finished request, ``breaker`` per breaker change,
                             ``config`` per new routing table version
GET      /admin/timeline     the last 15 minutes in 10-second buckets (the overview charts)
=======  ==================  ==========================================================

The page talks only to its own origin (a strict Content-Security-Policy) and sets no cookies; the
admin routes it reads follow the admin API's rules (the ``Host`` guard, and with ``server.master_key``
the key the page asks for and sends as a bearer token). The files themselves hold no data and load
without a key.
"""

from __future__ import annotations

from importlib import resources
from typing import Final

import orjson

from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.telemetry.feed import LiveFeed

from .errors import error_body

__all__ = ["Console"]

_TYPES: Final = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
_SECURITY: Final = [
    ("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
]


class Console:
    """The dashboard's routes over a :class:`LiveFeed`; ``files`` maps each ``/ui`` path to its answer."""

    def __init__(self, feed: LiveFeed) -> None:
        self.feed = feed
        self.files: dict[str, tuple[bytes, str]] = {}
        root = resources.files("stellwerk.ui")
        for entry in root.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if entry.is_file() and suffix in _TYPES:
                path = "/ui" if entry.name == "index.html" else f"/ui/{entry.name}"
                self.files[path] = (entry.read_bytes(), _TYPES[suffix])

    async def static(self, request: Request, rid: str) -> Response:
        path = request.path.rstrip("/") or "/ui"
        found = self.files.get(path)
        if found is None:
            return Response(404, error_body(404, f"Unknown path: GET {request.path}", code="not_found"),
                            [("x-request-id", rid)])
        body, content_type = found
        return Response(200, body, [("x-request-id", rid), *_SECURITY], content_type=content_type)

    async def events(self, request: Request, rid: str) -> Response | StreamingResponse:
        if self.feed.full():
            return Response(503, error_body(503, "Too many dashboards are open.", code="too_many_streams"),
                            [("x-request-id", rid), ("retry-after", "10")])
        return StreamingResponse(self.feed.stream(), headers=[("x-request-id", rid), ("cache-control", "no-cache"),
                                                               ("x-accel-buffering", "no")])

    async def timeline(self, request: Request, rid: str) -> Response:
        return Response(200, orjson.dumps(self.feed.timeline()), [("x-request-id", rid)])
