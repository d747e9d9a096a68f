"""Issue 9, item 4 and the new options: values that would inject headers upstream are refused at load time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellwerk.cli import main
from stellwerk.config import load_dict
from stellwerk.errors import ConfigError

SECRET = "hunter2-very-secret-value"


def _config(**dep: Any) -> dict[str, Any]:
    return {"models": [{"name": "chat", "deployments": [
        {"id": "a", "provider": "openai", "model": "gpt", "api_base": "http://127.0.0.1:9/v1", **dep}]}]}


@pytest.mark.parametrize("bad", ["\n", "\r\n", "\r", "\0", "\nX-Injected: 1", "\x01"])
@pytest.mark.parametrize("field", ["api_key", "header"])
def test_line_breaks_and_nul_in_header_values_are_refused_naming_the_key(bad: str, field: str) -> None:
    value = SECRET + bad
    data = _config(api_key="${KEY}") if field == "api_key" else _config(headers={"X-Org": "${KEY}"})
    with pytest.raises(ConfigError) as caught:
        load_dict(data, env={"KEY": value})
    text = str(caught.value)
    key = "models[0].deployments[0].api_key" if field == "api_key" else "models[0].deployments[0].headers.X-Org"
    assert any(p.startswith(f"{key}: ") for p in caught.value.problems), text
    assert SECRET not in text and "hunter2" not in text


def test_a_literal_value_is_not_echoed_either() -> None:
    with pytest.raises(ConfigError) as caught:
        load_dict(_config(headers={"X-Org": SECRET + "\r\nX-Evil: 1"}))
    assert "hunter2" not in str(caught.value)
    assert "X-Evil" not in str(caught.value)


def test_stellwerk_check_refuses_a_key_with_a_trailing_newline(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWLINE_KEY", SECRET + "\n")
    path = tmp_path / "stellwerk.yaml"
    path.write_text("models:\n  - name: chat\n    deployments:\n      - id: a\n        provider: openai\n"
                    "        model: gpt\n        api_key: ${NEWLINE_KEY}\n")
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert "models[0].deployments[0].api_key: contains a line break" in err
    assert "hunter2" not in out + err


def test_clean_values_load() -> None:
    config = load_dict(_config(api_key="${KEY}", headers={"X-Org": "org\tteam"}), env={"KEY": SECRET})
    assert config.models[0].deployments[0].api_key == SECRET


def test_new_server_options_have_documented_defaults() -> None:
    server = load_dict(_config()).server
    assert server.max_response_size == 64 * 1024 * 1024
    assert server.header_timeout == 10.0
    assert server.shutdown_grace == 30.0
    assert server.allowed_hosts == [] and server.cors_origins == []


@pytest.mark.parametrize(("server", "key"), [
    ({"header_timeout": 0}, "server.header_timeout"),
    ({"max_connections": 0}, "server.max_connections"),
    ({"shutdown_grace": -1}, "server.shutdown_grace"),
    ({"max_response_size": 10}, "server.max_response_size"),
    ({"cors_origins": ["https://a.example/path"]}, "server.cors_origins[0]"),
    ({"allowed_hosts": ["bad host"]}, "server.allowed_hosts[0]"),
])
def test_bad_server_options_name_the_key(server: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_dict({**_config(), "server": server})
    assert any(p.startswith(key) for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize(("dep", "key"), [
    ({"proxy": "socks5://p:1080"}, "models[0].deployments[0].proxy"),
    ({"ca_file": "/nonexistent/ca.pem"}, "models[0].deployments[0].ca_file"),
])
def test_bad_outbound_options_name_the_key(dep: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_dict(_config(**dep))
    assert any(p.startswith(key) for p in caught.value.problems), caught.value.problems


def test_deployments_of_one_origin_must_agree_on_proxy_and_ca_file(tmp_path: Path) -> None:
    # One connection pool per origin: two deployments calling it through different proxies cannot both be
    # honoured, so `stellwerk check` says so (not only the gateway when it starts).
    from stellwerk import load_dict as load_checked

    data = _config()
    second = {"id": "b", "provider": "openai", "model": "gpt", "api_base": "http://127.0.0.1:9/v1",
              "proxy": "http://127.0.0.1:3128"}
    data["models"][0]["deployments"].append(second)
    with pytest.raises(ConfigError) as caught:
        load_checked(data, env={})
    assert "deployment 'b': proxy and ca_file must match those of 'a'" in str(caught.value)
    path = tmp_path / "stellwerk.yaml"
    import yaml

    path.write_text(yaml.safe_dump(data))
    assert main(["check", str(path)]) != 0
