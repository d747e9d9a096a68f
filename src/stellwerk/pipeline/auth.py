"""The auth stage: the caller's gateway key, from memory, into ``call.principal``.

The key is read from ``Authorization: Bearer`` (OpenAI SDKs), ``x-api-key``
(Anthropic SDKs) or ``api-key`` (Azure SDKs), hashed and looked up in the
:class:`~stellwerk.keys.Keyring` (no database on the way). A missing, unknown,
revoked or expired key is a 401 ``invalid_api_key``; a model the key or its
team may not use is a 403 ``model_not_allowed``. The master key passes as the
principal ``master`` with every scope and no limits.

A call that arrives with a principal (the library: ``router.chat(...,
principal=...)``) keeps it; when it names a known key, that key's revocation,
models and scopes are still enforced.
"""

from __future__ import annotations

from collections.abc import Mapping

from stellwerk.errors import AuthenticationError, PermissionDeniedError, StellwerkError
from stellwerk.keys.keyring import MASTER, Keyring

from .call import Call, Principal
from .chain import Handler
from .reply import Reply

__all__ = ["Auth", "secret_of"]

_MASTER = Principal(key_id=MASTER, scopes=frozenset({"inference", "admin"}))


def secret_of(headers: Mapping[str, str]) -> str | None:
    """The key a client sent, in any of the three headers SDKs use."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return headers.get("x-api-key") or headers.get("api-key")


def principal_of(keyring: Keyring, headers: Mapping[str, str]) -> Principal:
    """The caller of a request with ``headers`` (401 when the key is not valid)."""
    key = keyring.authenticate(secret_of(headers))
    return _MASTER if key is None else keyring.principal(key)


class Auth:
    """Middleware of the ``auth`` stage."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    async def __call__(self, call: Call, next_handler: Handler, /) -> Reply:
        principal = call.principal
        if principal is None:
            principal = principal_of(self.keyring, call.headers)
            call = call.evolve(principal=principal)
        if principal.key_id == MASTER:
            return await next_handler(call)
        key = self.keyring.key(principal.key_id)
        try:
            if key is not None:
                if key.revoked_at is not None or (key.expires_at is not None and self.keyring.wall() >= key.expires_at):
                    raise AuthenticationError(f"The API key {key.id} is revoked or expired (invalid_api_key).")
                self.keyring.check_model(key, call.model)
                if "inference" not in key.scopes and "admin" not in key.scopes:
                    raise PermissionDeniedError(f"The key {key.id} has no 'inference' scope.")
            return await next_handler(call)
        except StellwerkError as err:
            err.key_id, err.team = principal.key_id, principal.team  # the failure's record names the caller
            raise
