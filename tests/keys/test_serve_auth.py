"""Without a master key the gateway stays on loopback unless told otherwise; the CLI for keys and spend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellwerk import load_dict
from stellwerk.cli import main
from stellwerk.errors import ConfigError
from stellwerk.gateway import Gateway
from stellwerk.gateway.serve import is_loopback

CONFIG: dict[str, Any] = {"models": [{"name": "chat", "deployments": [
    {"id": "a", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1"}]}]}


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.5", False), ("example.com", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_no_master_key_refuses_a_public_address_and_says_why() -> None:
    gateway = Gateway(load_dict(CONFIG))
    with pytest.raises(ConfigError) as refused:
        await gateway.start("0.0.0.0", 0)
    assert "server.master_key" in str(refused.value) and "--allow-unauthenticated" in str(refused.value)
    allowed = Gateway(load_dict(CONFIG), allow_unauthenticated=True)
    await allowed.start("0.0.0.0", 0)
    await allowed.close(grace=0)


def test_serve_has_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--allow-unauthenticated" in capsys.readouterr().out


def test_config_rejects_bad_keys_and_stores() -> None:
    data = {**CONFIG, "server": {"store": "mysql://u:pw@db/x"},
            "keys": [{"name": "a", "key": "k" * 20, "scopes": ["root"], "expires_at": "soon"},
                     {"name": "a", "key": "short"}]}
    with pytest.raises(ConfigError) as caught:
        load_dict(data)
    text = "\n".join(caught.value.problems)
    assert "keys[1].key" in text
    data["keys"] = [*data["keys"][:1], {"name": "a", "key": "k" * 20}]
    with pytest.raises(ConfigError) as caught:
        load_dict(data)
    text = "\n".join(caught.value.problems)
    for expected in ("server.store: expected sqlite:///relative/path.db", "keys[0].scopes", "keys[0].expires_at",
                     "keys[1].name: 'a' is already used"):
        assert expected in text
    assert "pw" not in text


def test_cli_keys_and_spend_on_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ["--store", f"sqlite:///{tmp_path / 'stw.db'}"]
    assert main(["keys", "create", "--name", "ci", "--rpm", "5", "--budget-usd", "2", "--budget-period", "1d",
                 *store]) == 0
    out = capsys.readouterr().out
    import json

    created = json.loads(out)
    assert created["key"].startswith("sk-stw-") and created["rpm"] == 5
    assert main(["keys", "list", *store]) == 0
    listing = capsys.readouterr().out
    assert created["id"] in listing and "active" in listing and created["key"] not in listing
    assert main(["keys", "revoke", created["id"], *store]) == 0
    capsys.readouterr()
    assert main(["keys", "list", *store]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["spend", "--group-by", "key", *store]) == 0
    assert "requests" in capsys.readouterr().out
