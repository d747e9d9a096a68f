"""The admin API of keys, teams and spend.

=======  ======================  =================================================================
method   path                    answer
=======  ======================  =================================================================
POST     /admin/keys             201 ``{id, key, ...}``: the key is shown only this once
GET      /admin/keys             ``{"data": [key, ...]}``: metadata, ``spend`` and ``requests`` in the
                                 current budget period; never the key
GET      /admin/keys/{id}        one key
PATCH    /admin/keys/{id}        change fields (``null`` removes a limit)
DELETE   /admin/keys/{id}        revoke: the key gets 401 from the next request on
POST     /admin/teams            201 the team
GET      /admin/teams            ``{"data": [team, ...]}``
GET      /admin/spend            ``?group_by=key|team|model|deployment&since=&until=`` (RFC 3339 or Unix
                                 seconds): ``{"group_by", "rows": [{<group_by>: ID, name, requests,
                                 prompt_tokens, completion_tokens, cost}]}`` from the ledger
=======  ======================  =================================================================

Bad input is a 400 naming the field; an unknown id a 404.
"""

from __future__ import annotations

import datetime
import math
from typing import Any, cast
from urllib.parse import parse_qs

import orjson

from stellwerk.errors import InvalidRequestError
from stellwerk.http.server import Request, Response
from stellwerk.keys.accounts import Accounts
from stellwerk.keys.governance import Governance
from stellwerk.keys.input import KeyInput, KeyPatch, TeamInput, parse, parse_time
from stellwerk.state.interfaces import GroupBy
from stellwerk.state.records import KeyRecord, TeamRecord

from .errors import error_body

__all__ = ["KeysAdmin"]

_GROUPS = ("key", "team", "model", "deployment")


def _time(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(value, datetime.UTC).isoformat().replace("+00:00", "Z")


class KeysAdmin:
    """The routes above, over a :class:`Governance` and the router's :class:`Accounts` (None: auth off)."""

    def __init__(self, governance: Governance, accounts: Accounts | None) -> None:
        self.governance = governance
        self.keyring = governance.keyring
        self.accounts = accounts

    def _usage(self, name: str, record: KeyRecord | TeamRecord) -> dict[str, Any]:
        if self.accounts is None:
            return {"spend": 0.0, "requests": 0}
        requests, spent = self.accounts.usage(name, record)
        return {"spend": round(spent, 10), "requests": requests}

    def key_view(self, key: KeyRecord) -> dict[str, Any]:
        budget = key.budget
        return {
            "id": key.id, "name": key.name, "team": key.team, "models": list(key.models), "rpm": key.rpm,
            "tpm": key.tpm, "max_parallel": key.max_parallel,
            "budget": {"usd": budget.usd, "period": budget.period} if budget else None,
            "expires_at": _time(key.expires_at), "scopes": list(key.scopes), "tags": list(key.tags),
            "metadata": key.metadata, "created_at": _time(key.created_at), "revoked": key.revoked_at is not None,
            "revoked_at": _time(key.revoked_at), "source": key.source, **self._usage("key:" + key.id, key)}

    def team_view(self, team: TeamRecord) -> dict[str, Any]:
        budget = team.budget
        return {"id": team.name, "name": team.name, "models": list(team.models), "rpm": team.rpm, "tpm": team.tpm,
                "max_parallel": team.max_parallel,
                "budget": {"usd": budget.usd, "period": budget.period} if budget else None,
                "created_at": _time(team.created_at), **self._usage("team:" + team.name, team)}

    # -- routes -------------------------------------------------------------------------------
    async def keys(self, request: Request, rid: str) -> Response:
        if request.method == "POST":
            record, secret = await self.keyring.create_key(parse(_json(request), KeyInput))
            return _ok({**self.key_view(record), "key": secret}, rid, 201)
        return _ok({"object": "list", "data": [self.key_view(k) for k in self.keyring.all_keys()]}, rid)

    async def key(self, request: Request, key_id: str, rid: str) -> Response:
        try:
            if request.method == "GET":
                record = self.keyring.key(key_id)
                if record is None:
                    raise KeyError(key_id)
            elif request.method == "PATCH":
                record = await self.keyring.update_key(key_id, parse(_json(request), KeyPatch))
            elif request.method == "DELETE":
                record = await self.keyring.revoke_key(key_id)
            else:
                return Response(405, error_body(405, f"Method {request.method} is not allowed on /admin/keys/{{id}}; "
                                                "use GET, PATCH, DELETE.", code="method_not_allowed"),
                                [("x-request-id", rid), ("allow", "GET, PATCH, DELETE")])
        except KeyError:
            return Response(404, error_body(404, f"No key with id '{key_id[:64]}'.", code="not_found"),
                            [("x-request-id", rid)])
        return _ok(self.key_view(record), rid)

    async def teams(self, request: Request, rid: str) -> Response:
        if request.method == "POST":
            team = await self.keyring.create_team(parse(_json(request), TeamInput))
            return _ok(self.team_view(team), rid, 201)
        return _ok({"object": "list", "data": [self.team_view(t) for t in self.keyring.all_teams()]}, rid)

    async def spend(self, request: Request, rid: str) -> Response:
        query = parse_qs(request.query)
        group_by = (query.get("group_by") or ["key"])[0]
        if group_by not in _GROUPS:
            raise InvalidRequestError(f"group_by: expected one of {', '.join(_GROUPS)}, got {group_by[:64]!r}",
                                      param="group_by")
        since, until = _moment(query, "since"), _moment(query, "until")
        await self.governance.ledger.flush()  # what has completed counts, even if not yet batched
        rows = await self.governance.store.spend(cast(GroupBy, group_by), since, until)
        out = []
        for row in rows:
            name = row.key
            if group_by == "key" and row.key is not None:
                record = self.keyring.key(row.key)
                name = record.name if record is not None else row.key
            out.append({group_by: row.key, "name": name, "requests": row.requests, "prompt_tokens": row.prompt_tokens,
                        "completion_tokens": row.completion_tokens, "cost": round(row.cost, 10)})
        return _ok({"group_by": group_by, "since": _time(since), "until": _time(until), "rows": out}, rid)


def _moment(query: dict[str, list[str]], field: str) -> float | None:
    values = query.get(field)
    if not values or not values[0]:
        return None
    value = values[0]
    try:
        seconds = float(value)
    except ValueError:
        return parse_time(value, field)
    if not math.isfinite(seconds):
        raise InvalidRequestError(f"{field}: expected RFC 3339 or Unix seconds, got {value[:64]!r}", param=field)
    return seconds


def _json(request: Request) -> Any:
    try:
        return orjson.loads(request.body) if request.body else None
    except orjson.JSONDecodeError as err:
        raise InvalidRequestError(f"We could not parse the JSON body: {err.msg}.") from None


def _ok(data: dict[str, Any], rid: str, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data), [("x-request-id", rid)])
