"""The admin API of the configuration (versions, diff, rollback, reload, whole-config PUT with a dry run).

=======  =====================================  ====================================================
GET      /admin/config                          ``{version, source, applied_at, author, config,
                                                last_error, overlay}`` (secrets redacted)
GET      /admin/config/versions                 every version kept: number, source, author, time
GET      /admin/config/versions/{N}             one version, with its config
GET      /admin/config/diff?from=N&to=M         what changed between two versions (default: to the current)
POST     /admin/config/rollback                 ``{"version": N}``: version N again, as a new version
POST     /admin/config/reload                   read the config file again (``stellwerk serve --config``)
PUT      /admin/config[?dry_run=true]           a whole config, YAML or JSON; dry run: validated, diffed,
                                                nothing applied
PUT      /admin/deployments/{D}                 ``{"enabled": false}`` drains a deployment (true: back)
=======  =====================================  ====================================================

A refused change answers 400 with every problem (``key: what was expected``) and leaves the running
version as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import msgspec
import orjson

from stellwerk.config import Config
from stellwerk.configuration import Version, diff
from stellwerk.errors import ConfigError, InvalidRequestError
from stellwerk.http.server import Request, Response
from stellwerk.routing import Router

__all__ = ["ConfigAPI", "public"]

_SECRETS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def public(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data with every credential replaced by ``[redacted]``."""
    data: dict[str, Any] = msgspec.to_builtins(config)
    for model in data["models"]:
        for dep in model["deployments"]:
            for key in _SECRETS:
                if dep.get(key):
                    dep[key] = "[redacted]"
            dep["headers"] = {k: "[redacted]" for k in dep.get("headers") or {}}
    server = data.get("server") or {}
    if server.get("master_key"):
        server["master_key"] = "[redacted]"
    return data


def _summary(version: Version) -> dict[str, Any]:
    return {"version": version.number, "source": version.source, "author": version.author,
            "applied_at": version.applied_at, "edits": len(version.overlay)}


class ConfigAPI:
    """``load(text, source)`` parses and checks a config (the composition root's loader); ``reload()`` reads the
    served file again (None when the gateway was not started from a file)."""

    def __init__(self, router: Router, load: Callable[[str, str], Config],
                 reload: Callable[[], Version] | None,
                 author_of: Callable[[Request], str | None] = lambda request: None) -> None:
        """``author_of``: who makes a change (the admin key's id once keys are on)."""
        self.router = router
        self._load = load
        self._reload = reload
        self._author = author_of

    def _ok(self, rid: str, data: Any, status: int = 200) -> Response:
        return Response(status, orjson.dumps(data), [("x-request-id", rid)])

    async def show(self, request: Request, rid: str) -> Response:
        manager = self.router.configuration
        current = manager.current
        return self._ok(rid, {**_summary(current), "config": public(current.config),
                              "overlay": [msgspec.to_builtins(e) for e in current.overlay],
                              "last_error": manager.history.last_error})

    async def versions(self, request: Request, rid: str) -> Response:
        return self._ok(rid, {"versions": [_summary(v) for v in self.router.configuration.history.all()]})

    def version(self, request: Request, number: str, rid: str) -> Response:
        found = self.router.configuration.history.get(int(number)) if number.isdigit() else None
        if found is None:
            raise InvalidRequestError(f"No configuration version {number!r} is kept.", param="version")
        return self._ok(rid, {**_summary(found), "config": public(found.config)})

    async def diff(self, request: Request, rid: str) -> Response:
        query = parse_qs(request.query)
        history = self.router.configuration.history
        numbers = []
        for key, default in (("from", ""), ("to", str(history.current.number))):
            raw = query.get(key, [default])[0]
            found = history.get(int(raw)) if raw.isdigit() else None
            if found is None:
                raise InvalidRequestError(f"{key}: expected a kept version number, got {raw!r}.", param=key)
            numbers.append(found)
        old, new = numbers
        return self._ok(rid, {"from": old.number, "to": new.number, **diff(old.config, new.config)})

    async def rollback(self, request: Request, rid: str) -> Response:
        body = _json(request)
        number = body.get("version") if isinstance(body, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise InvalidRequestError('Expected {"version": N}.', param="version")
        try:
            version = self.router.configuration.rollback(number, author=self._author(request))
        except KeyError:
            raise InvalidRequestError(f"No configuration version {number} is kept.", param="version") from None
        except ConfigError as err:
            raise InvalidRequestError(str(err)) from None
        return self._ok(rid, _summary(version))

    async def reload(self, request: Request, rid: str) -> Response:
        if self._reload is None:
            raise InvalidRequestError("This gateway was not started from a config file; PUT /admin/config instead.")
        try:
            version = self._reload()
        except ConfigError as err:
            raise InvalidRequestError(str(err)) from None
        return self._ok(rid, _summary(version))

    async def replace(self, request: Request, rid: str) -> Response:
        """``PUT /admin/config``: a whole config (YAML or JSON), applied, or only checked with ``dry_run``."""
        text = request.body.decode("utf-8", "replace")
        dry = parse_qs(request.query).get("dry_run", ["false"])[0].lower() in ("1", "true", "yes")
        try:
            config = self._load(text, "PUT /admin/config")
            if dry:
                return self._ok(rid, self.router.configuration.dry_run(config))
            version = self.router.configuration.reload(config, "api:PUT /admin/config", author=self._author(request))
        except ConfigError as err:
            raise InvalidRequestError(str(err)) from None
        return self._ok(rid, _summary(version))

    def deployment(self, request: Request, dep_id: str, rid: str) -> Response:
        """``PUT /admin/deployments/{D}`` with ``{"enabled": bool}``."""
        body = _json(request)
        enabled = body.get("enabled") if isinstance(body, dict) else None
        if not isinstance(enabled, bool) or set(body) != {"enabled"}:
            raise InvalidRequestError('Expected {"enabled": true|false}.', param="enabled")
        try:
            self.router.configuration.set_enabled(dep_id, enabled, author=self._author(request))
        except KeyError:
            return Response(404, orjson.dumps({"error": {"message": f"No deployment '{dep_id}'.", "type":
                                               "invalid_request_error", "param": None, "code": "not_found"}}),
                            [("x-request-id", rid)])
        except ConfigError as err:
            raise InvalidRequestError(str(err)) from None
        return self._ok(rid, _summary(self.router.configuration.current))


def _json(request: Request) -> Any:
    try:
        return orjson.loads(request.body) if request.body else None
    except orjson.JSONDecodeError as err:
        raise InvalidRequestError(f"We could not parse the JSON body of your request: {err.msg}.") from None
