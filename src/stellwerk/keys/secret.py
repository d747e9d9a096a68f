"""Key secrets: made with 256 bits of randomness, stored and compared only as SHA-256 hashes.

A fast hash is enough here (unlike passwords): the secret is random, so there
is nothing to guess. Hashes are compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

__all__ = ["PREFIX", "bearer_token", "hash_secret", "new_id", "new_secret", "same_hash"]

PREFIX = "sk-stw-"


def new_secret() -> str:
    """``sk-stw-`` and 43 URL-safe characters (32 random bytes)."""
    return PREFIX + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode("ascii")


def new_id() -> str:
    """A key's public id (``key_`` and 16 hex digits): what logs, records and the admin API show."""
    return "key_" + os.urandom(8).hex()


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two hashes (hex strings)."""
    return hmac.compare_digest(a, b)


def bearer_token(authorization: str) -> str | None:
    """The key in an ``Authorization`` header's text (``Bearer <key>``, the scheme in any case), else None."""
    if authorization.startswith("Bearer "):  # as SDKs send it
        return authorization[7:].strip()
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
