"""The keyring remembers secrets that authenticated (to skip the SHA-256), and that memory never lets a key in
that the live index would refuse: revoked, replaced, expired or never valid."""

from __future__ import annotations

import msgspec
import pytest

from stellwerk.errors import AuthenticationError, PermissionDeniedError
from stellwerk.keys import keyring as keyring_module
from stellwerk.keys.input import KeyInput, KeyPatch
from stellwerk.keys.keyring import MASTER_PRINCIPAL, Keyring
from stellwerk.keys.secret import hash_secret
from stellwerk.state.records import TeamRecord


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


async def test_what_check_remembers_never_outlives_a_change_of_the_key_or_its_team() -> None:
    now = [1_000.0]
    keyring = Keyring(wall=lambda: now[0])
    team = TeamRecord(name="t", models=("chat*",))
    keyring.replace([], [team])
    record, _ = await keyring.create_key(KeyInput(name="a", team="t", expires_at="1970-01-01T00:20:00Z"))
    for _ in range(2):  # checked, then from what was remembered
        keyring.check(record.id, "chat")
    with pytest.raises(PermissionDeniedError, match="model_not_allowed"):
        keyring.check(record.id, "other")
    keyring.apply(msgspec.structs.replace(team, models=("other",)))  # the team's models changed
    with pytest.raises(PermissionDeniedError, match="team t may not use"):
        keyring.check(record.id, "chat")
    keyring.check(record.id, "other")
    await keyring.update_key(record.id, KeyPatch(models=["x"]))  # the key's own models changed
    with pytest.raises(PermissionDeniedError, match=f"key {record.id} may not use"):
        keyring.check(record.id, "other")
    await keyring.update_key(record.id, KeyPatch(models=None))
    keyring.check(record.id, "other")
    now[0] = 1_200.0  # expired: checked every time
    with pytest.raises(AuthenticationError):
        keyring.check(record.id, "other")
    now[0] = 1_000.0
    keyring.check(record.id, "other")
    await keyring.revoke_key(record.id)
    with pytest.raises(AuthenticationError):
        keyring.check(record.id, "other")
    keyring.check("not-a-key", "chat")  # a principal the keyring does not hold passes (the library's own)


async def test_a_key_without_the_inference_scope_is_refused_every_time() -> None:
    keyring = Keyring()
    record, _ = await keyring.create_key(KeyInput(name="a", scopes=["admin"]))
    keyring.check(record.id, "chat")  # admin may call models too
    other, _ = await keyring.create_key(KeyInput(name="b", scopes=["inference"]))
    keyring.check(other.id, "chat")
    bare = msgspec.structs.replace(other, id="bare", hash="h", scopes=())
    keyring.apply(bare)
    for _ in range(2):
        with pytest.raises(PermissionDeniedError, match="no 'inference' scope"):
            keyring.check("bare", "chat")


async def test_an_authorization_header_is_remembered_as_sent_and_refused_once_revoked() -> None:
    now = [1_000.0]
    keyring = Keyring(master_key="sk-master-0123456789", wall=lambda: now[0])
    record, secret = await keyring.create_key(KeyInput(name="a", expires_at="1970-01-01T00:20:00Z"))
    header = f"Bearer {secret}"
    assert keyring.bearer(header).key_id == record.id
    assert keyring._sent == {header: hash_secret(secret)}
    assert keyring.bearer(header).key_id == record.id  # from the memory now
    assert keyring.bearer(f"bearer  {secret} ").key_id == record.id  # any case of the scheme, spaces around
    assert keyring.bearer("Bearer sk-master-0123456789") is MASTER_PRINCIPAL
    assert keyring.bearer("Bearer sk-master-0123456789") is MASTER_PRINCIPAL
    with pytest.raises(AuthenticationError, match="Invalid API key"):  # the header's text is not itself a key
        keyring.caller(header)
    for wrong in ("Basic abc", "Bearer", "Bearer sk-stw-wrong", secret):
        with pytest.raises(AuthenticationError):
            keyring.bearer(wrong)
    assert set(keyring._sent) == {header, f"bearer  {secret} ", "Bearer sk-master-0123456789"}
    now[0] = 1_200.0
    with pytest.raises(AuthenticationError, match="expired"):
        keyring.bearer(header)
    now[0] = 1_000.0
    await keyring.revoke_key(record.id)
    for _ in range(2):  # forgotten at the first refusal, then hashed again and refused again
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            keyring.bearer(header)
    assert header not in keyring._sent


async def test_the_memory_of_headers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring_module, "VERIFIED", 3)
    keyring = Keyring()
    secrets = [(await keyring.create_key(KeyInput(name=f"k{n}")))[1] for n in range(7)]
    for secret in secrets * 2:
        assert keyring.bearer(f"Bearer {secret}").key_id
        assert len(keyring._sent) <= 3
