"""The keyring remembers secrets that authenticated (to skip the SHA-256), and that memory never lets a key in
that the live index would refuse: revoked, replaced, expired or never valid."""

from __future__ import annotations

import pytest

from stellwerk.errors import AuthenticationError
from stellwerk.keys import keyring as keyring_module
from stellwerk.keys.input import KeyInput, KeyPatch
from stellwerk.keys.keyring import MASTER_PRINCIPAL, Keyring
from stellwerk.keys.secret import hash_secret


async def test_a_revoked_key_is_refused_after_it_was_remembered() -> None:
    keyring = Keyring()
    record, secret = await keyring.create_key(KeyInput(name="a"))
    assert keyring.caller(secret).key_id == record.id
    assert keyring.caller(secret).key_id == record.id  # from the memory now
    await keyring.revoke_key(record.id)
    with pytest.raises(AuthenticationError):
        keyring.caller(secret)
    with pytest.raises(AuthenticationError):  # and again, now hashed once more
        keyring.caller(secret)


async def test_an_expired_key_is_refused_after_it_was_remembered() -> None:
    now = [1_000.0]
    keyring = Keyring(wall=lambda: now[0])
    record, secret = await keyring.create_key(KeyInput(name="a", expires_at="1970-01-01T00:20:00Z"))
    assert keyring.caller(secret).key_id == record.id
    now[0] = 1_200.0
    with pytest.raises(AuthenticationError, match="expired"):
        keyring.caller(secret)


async def test_a_patched_key_stays_valid_and_a_reloaded_index_is_consulted() -> None:
    keyring = Keyring()
    record, secret = await keyring.create_key(KeyInput(name="a"))
    keyring.caller(secret)
    updated = await keyring.update_key(record.id, KeyPatch(rpm=5))
    assert keyring.caller(secret).key_id == record.id
    assert keyring.key(record.id) == updated
    keyring.replace([], [])  # the store's keys reloaded without it
    with pytest.raises(AuthenticationError):
        keyring.caller(secret)


def test_the_master_key_is_remembered_and_wrong_keys_are_not() -> None:
    keyring = Keyring(master_key="sk-master-0123456789")
    assert keyring.caller("sk-master-0123456789") is MASTER_PRINCIPAL
    assert keyring.caller("sk-master-0123456789") is MASTER_PRINCIPAL
    for n in range(50):
        with pytest.raises(AuthenticationError):
            keyring.caller(f"sk-stw-wrong-{n}")
    assert list(keyring._verified) == ["sk-master-0123456789"]
    assert keyring._verified["sk-master-0123456789"] == hash_secret("sk-master-0123456789")


async def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring_module, "VERIFIED", 3)
    keyring = Keyring()
    secrets = [(await keyring.create_key(KeyInput(name=f"k{n}")))[1] for n in range(7)]
    for secret in secrets:
        keyring.caller(secret)
        assert len(keyring._verified) <= 3
    for secret in secrets:  # every key still authenticates, remembered or not
        assert keyring.caller(secret).key_id
