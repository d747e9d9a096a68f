"""``stellwerk keys create|list|revoke`` and ``stellwerk spend``: through a running gateway, or on the store.

    stellwerk keys create --url http://127.0.0.1:4000 --name ci --rpm 60 --budget-usd 5 --budget-period 1d
    stellwerk keys list   --config stellwerk.yaml          # straight from server.store (no gateway running)
    stellwerk spend --group-by key --url http://127.0.0.1:4000

With ``--url`` the command calls the gateway's admin API with ``--master-key``
(default ``$STELLWERK_MASTER_KEY``); a running gateway sees the change at once.
Without it, the command opens ``--store`` (or the config's ``server.store``)
directly: for setting keys up before a gateway starts (a running gateway loads
keys at start, so revoke through ``--url`` while it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["add_keys_arguments", "add_spend_arguments", "run_keys", "run_spend"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="a running gateway (http://host:port): use its admin API")
    parser.add_argument("--master-key", default=None, help="admin key for --url (default: $STELLWERK_MASTER_KEY)")
    parser.add_argument("--store", help="store URL, e.g. sqlite:///stellwerk.db (without --url)")
    parser.add_argument("--config", "-c", help="config file whose server.store to use (without --url)")


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="create a key; prints it once")
    _common(create)
    create.add_argument("--name", required=True)
    create.add_argument("--team")
    create.add_argument("--models", help="comma-separated model names or globs (default: all)")
    for limit in ("rpm", "tpm", "max-parallel"):
        create.add_argument(f"--{limit}", type=int)
    create.add_argument("--budget-usd", type=float)
    create.add_argument("--budget-period", default="total", choices=["1h", "1d", "7d", "30d", "total"])
    create.add_argument("--expires-at", help="RFC 3339, e.g. 2026-12-31T23:59:59Z")
    create.add_argument("--admin", action="store_true", help="give the key the admin scope")
    listing = verbs.add_parser("list", help="list keys (never their secrets)")
    _common(listing)
    revoke = verbs.add_parser("revoke", help="revoke a key by id")
    _common(revoke)
    revoke.add_argument("id")


def add_spend_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--group-by", default="key", choices=["key", "team", "model", "deployment"])
    parser.add_argument("--since", help="RFC 3339 or Unix seconds")
    parser.add_argument("--until", help="RFC 3339 or Unix seconds")


def _request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    key = args.master_key or os.environ.get("STELLWERK_MASTER_KEY")
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", "replace")[:500]
        raise SystemExit(f"error: {method} {path}: HTTP {err.code}: {detail}") from None


def _governance(args: argparse.Namespace) -> Any:
    from stellwerk.config.schema import ServerConfig
    from stellwerk.keys.governance import Governance
    from stellwerk.state.url import DEFAULT_STORE

    store = args.store
    if store is None and args.config:
        from stellwerk.compose import load_file

        store = load_file(args.config).server.store
    return Governance(ServerConfig(store=store or DEFAULT_STORE), ())


def _key_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"name": args.name}
    if args.team:
        body["team"] = args.team
    if args.models:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for field in ("rpm", "tpm", "max_parallel"):
        if getattr(args, field) is not None:
            body[field] = getattr(args, field)
    if args.budget_usd is not None:
        body["budget"] = {"usd": args.budget_usd, "period": args.budget_period}
    if args.expires_at:
        body["expires_at"] = args.expires_at
    if args.admin:
        body["scopes"] = ["inference", "admin"]
    return body


async def _keys_on_store(args: argparse.Namespace) -> Any:
    from stellwerk.gateway.admin_keys import KeysAdmin
    from stellwerk.keys.input import KeyInput, parse

    governance = _governance(args)
    try:
        await governance.keyring.load()
        admin = KeysAdmin(governance, None)
        if args.verb == "create":
            record, secret = await governance.keyring.create_key(parse(_key_body(args), KeyInput))
            return {**admin.key_view(record), "key": secret}
        if args.verb == "revoke":
            try:
                return admin.key_view(await governance.keyring.revoke_key(args.id))
            except KeyError:
                raise SystemExit(f"error: no key with id {args.id}") from None
        return {"data": [admin.key_view(k) for k in governance.keyring.all_keys()]}
    finally:
        await governance.close()


def run_keys(args: argparse.Namespace) -> int:
    from stellwerk.errors import StellwerkError

    try:
        if args.url:
            path = {"create": "/admin/keys", "list": "/admin/keys"}.get(args.verb, f"/admin/keys/{args.id}")
            method = {"create": "POST", "list": "GET", "revoke": "DELETE"}[args.verb]
            result = _request(args, method, path, _key_body(args) if args.verb == "create" else None)
        else:
            result = asyncio.run(_keys_on_store(args))
    except StellwerkError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    if args.verb == "list":
        for key in result["data"]:
            state = "revoked" if key["revoked"] else "active"
            print(f"{key['id']}  {key['name']:20s} team={key['team'] or '-'} {state} spend=${key['spend']:.6f}")
    else:
        print(json.dumps(result, indent=2))
        if args.verb == "create":
            print("The key is shown only this once.", file=sys.stderr)
    return 0


def run_spend(args: argparse.Namespace) -> int:
    query = {"group_by": args.group_by, **{k: v for k, v in (("since", args.since), ("until", args.until)) if v}}
    if args.url:
        result = _request(args, "GET", "/admin/spend?" + urllib.parse.urlencode(query))
    else:
        result = asyncio.run(_spend_on_store(args, query))
    print(f"{args.group_by:28s} {'requests':>9s} {'prompt':>10s} {'completion':>10s} {'cost $':>12s}")
    for row in result["rows"]:
        label = str(row.get("name") or row[args.group_by] or "-")
        print(f"{label:28s} {row['requests']:9d} {row['prompt_tokens']:10d} {row['completion_tokens']:10d} "
              f"{row['cost']:12.6f}")
    return 0


async def _spend_on_store(args: argparse.Namespace, query: dict[str, str]) -> Any:
    from stellwerk.gateway.admin_keys import KeysAdmin
    from stellwerk.http.server import Request

    governance = _governance(args)
    try:  # not started: a running gateway's journal is its own (it moves it into the store itself)
        await governance.keyring.load()
        admin = KeysAdmin(governance, None)
        request = Request("GET", "/admin/spend", urllib.parse.urlencode(query), {}, b"")
        response = await admin.spend(request, "cli")
        return json.loads(response.body)
    finally:
        await governance.close()
