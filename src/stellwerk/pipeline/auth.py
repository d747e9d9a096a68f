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

from collections.abc import Awaitable

from stellwerk.errors import StellwerkError
from stellwerk.keys.keyring import MASTER, Keyring

from .call import Call, Principal
from .chain import Link, Stage
from .reply import Reply

__all__ = ["Auth", "principal_of"]


def principal_of(keyring: Keyring, headers: dict[str, str]) -> Principal:
    """The caller of a request with ``headers`` (401 when the key is not valid). An ``Authorization`` header is
    looked up by its whole text first (:meth:`~stellwerk.keys.keyring.Keyring.bearer`)."""
    value = headers.get("authorization")
    if value is not None:
        return keyring.bearer(value)
    return keyring.caller(headers.get("x-api-key") or headers.get("api-key"))


class Auth(Stage):
    """Middleware of the ``auth`` stage. A call that carries its principal already (the gateway names it at the
    edge) is checked and passed on without a frame of its own."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def handle(self, call: Call, after: Link, /) -> Awaitable[Reply]:
        principal = call.principal
        if principal is None:
            return self._keyed(call, after)
        key_id = principal.key_id
        if key_id != MASTER:
            self.keyring.check(key_id, call.model)
        return after.handle(call)

    async def _keyed(self, call: Call, after: Link) -> Reply:
        """A call that names its caller only by a key in its headers (the library's ``api_key``)."""
        principal = principal_of(self.keyring, dict(call.headers))
        call = call.evolve(principal=principal)
        try:
            if principal.key_id != MASTER:
                self.keyring.check(principal.key_id, call.model)
            return await after.handle(call)
        except StellwerkError as err:
            err.key_id, err.team = principal.key_id, principal.team  # the failure's record names the caller
            raise
