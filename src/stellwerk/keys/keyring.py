"""The in-memory index of keys and teams: the request path reads it, the admin API writes through it.

Loaded from the :class:`~stellwerk.state.KeyStore` at start (plus the keys
declared in the config file); every change is written to the store first and
then swapped into the index, so a revoked key is refused from the next
request on. Nothing here waits on the store while authenticating.

A secret that authenticated once is remembered with its hash (at most
:data:`VERIFIED` of them), so a client's next requests skip the SHA-256: the
lookup is a dict lookup of the secret itself, and the hash it finds is then
looked up in the live index like a computed one, so a revoked, replaced or
expired key is refused just the same. ``Authorization`` headers that
authenticated are remembered the same way, as sent (``Bearer <key>``, in a
memory of their own, also at most :data:`VERIFIED`; :meth:`Keyring.bearer`),
so they are not parsed again either. Only secrets that authenticated are
kept (a flood of wrong keys hashes every time and remembers nothing). The
trade-off: the secrets of keys in use stay in this process's memory for its
lifetime, as the providers' API keys of the config do; the store and the
records still hold hashes only.
"""

from __future__ import annotations

import fnmatch
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import msgspec

from stellwerk.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError
from stellwerk.pipeline.call import Principal
from stellwerk.state.interfaces import KeyStore
from stellwerk.state.records import KeyRecord, TeamRecord

from .input import KeyInput, KeyPatch, TeamInput, parse_time
from .secret import bearer_token, hash_secret, new_id, new_secret, same_hash

__all__ = ["MASTER", "MASTER_PRINCIPAL", "Keyring"]

MASTER: Final = "master"
"""The key id requests made with ``server.master_key`` are recorded under."""
MASTER_PRINCIPAL: Final = Principal(key_id=MASTER, scopes=frozenset({"inference", "admin"}))

VERIFIED = 4096
"""Secrets remembered with their hash at most (the memory is cleared when full)."""
_INVALID: Final = "Invalid API key: send a gateway key as 'Authorization: Bearer', 'x-api-key' or 'api-key' (invalid_api_key)."


class _Live:
    """A key that is not revoked, as authentication reads it: in fields of a compiled class, not of the record."""

    __slots__ = ("expires_at", "hash", "principal")

    def __init__(self, key: KeyRecord) -> None:
        self.hash = key.hash
        self.expires_at = key.expires_at
        self.principal = Principal(key_id=key.id, team=key.team, scopes=frozenset(key.scopes))


def _remember(memory: dict[str, str], text: str, digest: str) -> None:
    if len(memory) >= VERIFIED:
        memory.clear()
    memory[text] = digest


class Keyring:
    """Keys by hash and id, teams by name. ``wall`` is the wall clock (expiry times are Unix times)."""

    def __init__(self, store: KeyStore | None = None, *, master_key: str | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.wall = wall
        self._master = hash_secret(master_key) if master_key else None
        self._by_hash: dict[str, _Live] = {}
        """Keys that are not revoked, by hash."""
        self._by_id: dict[str, KeyRecord] = {}
        self._teams: dict[str, TeamRecord] = {}
        self._verified: dict[str, str] = {}
        """Secrets that authenticated, with their hash (see the module's docstring)."""
        self._sent: dict[str, str] = {}
        """``Authorization`` headers that authenticated, as sent, with their key's hash (:meth:`bearer`)."""
        self._passed: dict[str, dict[str, float]] = {}
        """By model, the ids of the keys :meth:`check` let call it, with their expiry (``inf`` for none): forgotten
        at every change of a key or team."""
        self.changed: Callable[[KeyRecord | TeamRecord], None] | None = None
        """Told of every change made here (the cluster tells the other replicas)."""

    # -- loading ------------------------------------------------------------------------------
    async def load(self, declared: Sequence[tuple[KeyRecord, str]] = ()) -> None:
        """The store's keys and teams, and ``declared`` (record, secret) pairs from the config file."""
        keys, teams = await self.store.load() if self.store is not None else ([], [])
        self.replace(keys, teams)
        for record, secret in declared:
            self._index(msgspec.structs.replace(record, hash=hash_secret(secret), source="config"))

    def replace(self, keys: Iterable[KeyRecord], teams: Iterable[TeamRecord]) -> None:
        self._passed = {}
        self._by_hash, self._by_id, self._teams = {}, {}, {t.name: t for t in teams}
        for key in keys:
            self._index(key)

    def apply(self, record: KeyRecord | TeamRecord) -> None:
        """A key or team as it is now: a change stored already, here or by another replica (keys of the config
        file are not the store's to change)."""
        if isinstance(record, TeamRecord):
            self._passed = {}
            self._teams = {**self._teams, record.name: record}
        elif record.source != "config":
            self._index(record)

    def _index(self, key: KeyRecord) -> None:
        self._passed = {}
        old = self._by_id.get(key.id)
        if old is not None:
            self._by_hash.pop(old.hash, None)
        self._by_id[key.id] = key
        if key.revoked_at is None:
            self._by_hash[key.hash] = _Live(key)

    # -- the request path ---------------------------------------------------------------------
    def is_master(self, secret: str) -> bool:
        return self._master is not None and same_hash(hash_secret(secret), self._master)

    def caller(self, secret: str | None) -> Principal:
        """Who sends ``secret``: a live key's principal, or :data:`MASTER_PRINCIPAL` for the master key.
        :class:`AuthenticationError` otherwise. One hash, one lookup, one constant-time comparison."""
        if not secret:
            raise AuthenticationError("Missing API key: send a gateway key as 'Authorization: Bearer', "
                                      "'x-api-key' or 'api-key' (invalid_api_key).")
        digest = self._verified.get(secret)
        if digest is not None:  # authenticated before: the same secret, so the same hash
            return self._known(self._verified, secret, digest)
        digest = hash_secret(secret)
        live = self._by_hash.get(digest)
        if live is None or not same_hash(digest, live.hash):
            if self._master is not None and same_hash(digest, self._master):
                _remember(self._verified, secret, self._master)
                return MASTER_PRINCIPAL
            raise AuthenticationError(_INVALID)
        _remember(self._verified, secret, live.hash)
        return self._unexpired(live)

    def bearer(self, authorization: str) -> Principal:
        """:meth:`caller` for the text of an ``Authorization`` header (``Bearer <key>``). A header that
        authenticated is remembered as it was sent, with its key's hash, so that a client's next requests skip
        parsing it too; over a keep-alive connection the server hands over the very same text (see
        ``_Connection.on_header``), so not even its hash is computed again."""
        digest = self._sent.get(authorization)
        if digest is not None:
            return self._known(self._sent, authorization, digest)
        secret = bearer_token(authorization)
        principal = self.caller(secret)
        digest = self._verified.get(secret) if secret else None
        if digest is not None:
            _remember(self._sent, authorization, digest)
        return principal

    def _known(self, memory: dict[str, str], text: str, digest: str) -> Principal:
        """The caller whose key (``text``, as ``memory`` holds it) authenticated before with hash ``digest``."""
        live = self._by_hash.get(digest)
        if live is None:
            if digest is self._master:
                return MASTER_PRINCIPAL
            del memory[text]  # revoked or replaced since
            raise AuthenticationError(_INVALID)
        return self._unexpired(live)

    def _unexpired(self, live: _Live) -> Principal:
        expires = live.expires_at
        if expires is not None and self.wall() >= expires:
            raise AuthenticationError(f"The API key {live.principal.key_id} has expired (invalid_api_key).")
        return live.principal

    def check(self, key_id: str, model: str) -> None:
        """Raise unless the key ``key_id`` may call ``model`` now (a principal that is not one of these keys
        passes): 401 when it is revoked or expired; 403 when the key or its team may not use the model, or
        it has no ``inference`` scope. What passed is remembered by model, with the key's expiry, until the next
        change of any key or team (two dict lookups instead of reading the records); expiry is checked every
        time."""
        passed = self._passed.get(model)
        if passed is not None:
            expires = passed.get(key_id)
            if expires is not None:
                if expires != math.inf and self.wall() >= expires:
                    raise AuthenticationError(f"The API key {key_id} is revoked or expired (invalid_api_key).")
                return
        key = self._by_id.get(key_id)
        if key is None:
            return
        if key.revoked_at is not None or (key.expires_at is not None and self.wall() >= key.expires_at):
            raise AuthenticationError(f"The API key {key.id} is revoked or expired (invalid_api_key).")
        self.check_model(key, model)
        if "inference" not in key.scopes and "admin" not in key.scopes:
            raise PermissionDeniedError(f"The key {key.id} has no 'inference' scope.")
        if passed is None:
            if len(self._passed) >= 1024:  # model names come from clients
                self._passed.clear()
            passed = self._passed[model] = {}
        passed[key_id] = key.expires_at if key.expires_at is not None else math.inf

    def check_model(self, key: KeyRecord, model: str) -> None:
        """:class:`PermissionDeniedError` when the key or its team may not use ``model``."""
        if key.models and not _matches(key.models, model):
            raise PermissionDeniedError(f"The key {key.id} may not use the model '{model}' (model_not_allowed).",
                                        code="model_not_allowed")
        team = self._teams.get(key.team) if key.team is not None else None
        if team is not None and team.models and not _matches(team.models, model):
            raise PermissionDeniedError(f"The team {team.name} may not use the model '{model}' (model_not_allowed).",
                                        code="model_not_allowed")

    def key(self, key_id: str) -> KeyRecord | None:
        return self._by_id.get(key_id)

    def team(self, name: str) -> TeamRecord | None:
        return self._teams.get(name)

    def all_keys(self) -> list[KeyRecord]:
        return list(self._by_id.values())

    def all_teams(self) -> list[TeamRecord]:
        return list(self._teams.values())

    # -- changes (the admin API): the store first, then the index ---------------------------------
    async def create_key(self, spec: KeyInput) -> tuple[KeyRecord, str]:
        """A new key and its secret (the only time the secret exists outside the caller)."""
        self._check_team(spec.team)
        secret = new_secret()
        record = KeyRecord(
            id=new_id(), name=spec.name, hash=hash_secret(secret), team=spec.team, models=tuple(spec.models or ()),
            rpm=spec.rpm, tpm=spec.tpm, max_parallel=spec.max_parallel, budget=spec.budget,
            expires_at=parse_time(spec.expires_at) if spec.expires_at is not None else None,
            scopes=tuple(spec.scopes or ("inference",)), tags=tuple(spec.tags or ()), metadata=spec.metadata or {},
            created_at=self.wall())
        await self._save(record)
        return record, secret

    async def update_key(self, key_id: str, patch: KeyPatch) -> KeyRecord:
        record = self._changeable(key_id)
        changes = {f: getattr(patch, f) for f in patch.__struct_fields__ if getattr(patch, f) is not msgspec.UNSET}
        if "team" in changes:
            self._check_team(changes["team"])
        if "expires_at" in changes and changes["expires_at"] is not None:
            changes["expires_at"] = parse_time(changes["expires_at"])
        for name in ("models", "scopes", "tags"):
            if name in changes:
                changes[name] = tuple(changes[name] or ())
        if "metadata" in changes:
            changes["metadata"] = changes["metadata"] or {}
        updated = msgspec.structs.replace(record, **changes)
        await self._save(updated)
        return updated

    async def revoke_key(self, key_id: str) -> KeyRecord:
        record = msgspec.structs.replace(self._changeable(key_id), revoked_at=self.wall())
        await self._save(record)
        return record

    async def create_team(self, spec: TeamInput) -> TeamRecord:
        if spec.name in self._teams:
            raise InvalidRequestError(f"name: a team named '{spec.name}' exists already", param="name")
        team = TeamRecord(name=spec.name, models=tuple(spec.models or ()), rpm=spec.rpm, tpm=spec.tpm,
                          max_parallel=spec.max_parallel, budget=spec.budget, created_at=self.wall())
        if self.store is not None:
            await self.store.put_team(team)
        self.apply(team)
        if self.changed is not None:
            self.changed(team)
        return team

    def _changeable(self, key_id: str) -> KeyRecord:
        record = self._by_id.get(key_id)
        if record is None:
            raise KeyError(key_id)
        if record.source == "config":
            raise InvalidRequestError(f"id: key {key_id} is declared in the config file; change it there", param="id")
        return record

    def _check_team(self, team: str | None) -> None:
        if team is not None and team not in self._teams:
            raise InvalidRequestError(f"team: no team named '{team}' (create it with POST /admin/teams)", param="team")

    async def _save(self, record: KeyRecord) -> None:
        if self.store is not None:
            await self.store.put_key(record)
        self._index(record)
        if self.changed is not None:
            self.changed(record)


def _matches(patterns: tuple[str, ...], model: str) -> bool:
    return model in patterns or any(fnmatch.fnmatchcase(model, p) for p in patterns)
