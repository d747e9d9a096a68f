"""The configuration contract: defaults, ``${ENV}`` interpolation, and precise errors (key + what was expected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stellwerk import load_dict, load_file, load_text
from stellwerk.config import Config, interpolate
from stellwerk.errors import ConfigError

SECRET = "sk-config-secret-0123456789abcdef"


def dep(**fields: Any) -> dict[str, Any]:
    return {"id": "a", "provider": "openai", "model": "gpt-x", "api_base": "http://127.0.0.1:9/v1", **fields}


def cfg(*deployments: dict[str, Any], **model_fields: Any) -> dict[str, Any]:
    return {"models": [{"name": "chat", "deployments": list(deployments or [dep()]), **model_fields}]}


def problems(data: Any, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_dict(data, env=env or {})
    return info.value.problems


# -- valid configs and defaults --------------------------------------------------------------------------------------
def test_minimal_config_gets_documented_defaults() -> None:
    config = load_dict(cfg(), env={})
    assert isinstance(config, Config)
    model = config.models[0]
    assert (model.name, model.strategy, model.timeout, model.retries) == ("chat", "failover", 30.0, 1)
    d = model.deployments[0]
    assert (d.api_key, d.timeout, d.connect_timeout, d.stream_usage, d.weight) == (None, None, 5.0, True, 1.0)
    assert (d.price.input_per_mtok, d.price.output_per_mtok) == (0.0, 0.0)
    assert (config.server.host, config.server.port, config.server.max_body_size) == ("127.0.0.1", 4000, 32 << 20)


def test_yaml_text_and_file(tmp_path: Path) -> None:
    text = """
server:
  port: 0
  max_body_size: 4096
models:
  - name: chat
    timeout: 2.5
    retries: 0
    deployments:
      - id: primary
        provider: azure
        model: gpt4o-deploy
        api_base: https://example.openai.azure.com
        api_version: "2024-06-01"
        price: {input_per_mtok: 2.5, output_per_mtok: 10}
"""
    path = tmp_path / "stellwerk.yaml"
    path.write_text(text)
    for config in (load_text(text, env={}), load_file(path, env={})):
        d = config.models[0].deployments[0]
        assert (d.provider, d.api_version, d.price.output_per_mtok) == ("azure", "2024-06-01", 10.0)
        assert config.server.max_body_size == 4096
        assert config.models[0].timeout == 2.5


def test_unquoted_azure_api_version_is_a_string() -> None:
    """``api_version: 2024-10-21`` (as Azure documents it) must not turn into a YAML date and fail."""
    config = load_text(
        "models:\n  - name: chat\n    deployments:\n      - id: az\n        provider: azure\n        model: d\n"
        "        api_base: https://r.openai.azure.com\n        api_version: 2024-10-21\n", env={})
    assert config.models[0].deployments[0].api_version == "2024-10-21"


def test_to_dict_round_trips() -> None:
    config = load_dict(cfg(dep(headers={"OpenAI-Organization": "org"})), env={})
    assert load_dict(config.to_dict(), env={}) == config


# -- interpolation -----------------------------------------------------------------------------------------------------
def test_env_interpolation_forms() -> None:
    env = {"KEY": SECRET, "HOST": "127.0.0.1", "TIMEOUT": "0.5", "RETRIES": "3"}
    config = load_dict(cfg(
        dep(api_key="${KEY}", api_base="http://${HOST}:${PORT:-8080}/v1", headers={"X-Price": "$$5 ${X:-}"},
            timeout="${TIMEOUT}"),
        retries="${RETRIES}",
    ), env=env)
    d = config.models[0].deployments[0]
    assert d.api_key == SECRET
    assert d.api_base == "http://127.0.0.1:8080/v1"
    assert d.headers == {"X-Price": "$5 "}
    assert d.timeout == 0.5  # strings from the environment convert to numbers
    assert config.models[0].retries == 3


def test_dollar_dollar_escapes_and_values_are_not_reinterpolated() -> None:
    assert interpolate("$${NOT_A_VAR}", {}) == "${NOT_A_VAR}"
    assert interpolate("${A}", {"A": "${B}"}) == "${B}"
    assert interpolate({"k": ["x${A}y", 3, None]}, {"A": "1"}) == {"k": ["x1y", 3, None]}


def test_defaults_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STELLWERK_TEST_KEY", SECRET)
    config = load_dict(cfg(dep(api_key="${STELLWERK_TEST_KEY}")))
    assert config.models[0].deployments[0].api_key == SECRET


def test_missing_env_var_names_the_key_and_the_variable() -> None:
    found = problems(cfg(dep(api_key="${OPENAI_KEY_MISSING}")))
    assert len(found) == 1
    assert found[0].startswith("models[0].deployments[0].api_key: ")
    assert "OPENAI_KEY_MISSING" in found[0] and "not set" in found[0]


def test_every_missing_env_var_is_listed() -> None:
    found = problems(cfg(dep(api_key="${A_MISSING}", api_base="${B_MISSING}")))
    assert any("A_MISSING" in p for p in found) and any("B_MISSING" in p for p in found)


def test_secrets_from_env_are_not_in_error_messages() -> None:
    env = {"KEY": SECRET}
    # A valid secret next to another problem.
    found = problems(cfg(dep(api_key="${KEY}", timeout="soon")), env)
    assert found and all(SECRET not in p for p in found)
    with pytest.raises(ConfigError) as info:
        load_dict(cfg(dep(api_key="${KEY}"), retries=99), env=env)
    assert SECRET not in str(info.value)


def test_secret_substituted_into_a_checked_field_is_not_echoed() -> None:
    """A swapped variable (the key's env var used for ``api_base``) must not print the key."""
    with pytest.raises(ConfigError) as info:
        load_dict(cfg(dep(api_base="${KEY}")), env={"KEY": SECRET})
    assert any(p.startswith("models[0].deployments[0].api_base: ") for p in info.value.problems)
    assert SECRET not in str(info.value)


# -- precise errors ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({**cfg(), "extra": 1}, "extra: unknown key", id="unknown-top-level-key"),
    pytest.param(cfg(dep(api_bse="http://x")), "models[0].deployments[0].api_bse: unknown key", id="unknown-nested-key"),
    pytest.param(cfg(dep(price={"input": 1})), "models[0].deployments[0].price.input: unknown key",
                 id="unknown-price-key"),
    pytest.param(cfg(retries="three"), "models[0].retries: expected `int`, got `str`", id="wrong-type"),
    pytest.param(cfg(retries=True), "models[0].retries: expected `int`, got `bool`", id="bool-for-int"),
    pytest.param(cfg(retries=11), "models[0].retries: expected `int` <= 10", id="out-of-range"),
    pytest.param(cfg(timeout=0), "models[0].timeout: expected `float` > 0.0", id="zero-timeout"),
    pytest.param(cfg(dep(weight=-1)), "models[0].deployments[0].weight: expected `float` >= 0.0", id="negative"),
    pytest.param({"models": [{"name": "chat", "deployments": {}}]}, "models[0].deployments: expected `array`, got "
                 "`object`", id="object-for-list"),
    pytest.param({"models": [{"name": "chat", "deployments": [{"id": "a", "provider": "openai"}]}]},
                 "models[0].deployments[0].model: required key is missing", id="missing-required"),
    pytest.param({"models": [{"deployments": [dep()]}]}, "models[0].name: required key is missing",
                 id="missing-model-name"),
    pytest.param({}, "models: required key is missing", id="missing-models"),
    pytest.param({"models": []}, "models: expected `array` of length >= 1", id="empty-models"),
    pytest.param({"models": [{"name": "chat", "deployments": []}]}, "models[0].deployments: expected `array` of "
                 "length >= 1", id="no-deployments"),
    pytest.param(cfg(dep(provider="cohere")), "models[0].deployments[0].provider: expected one of ",
                 id="unknown-provider"),
    pytest.param(cfg(strategy="no-such-strategy"), "models[0].strategy: expected one of ", id="unknown-strategy"),
    pytest.param(cfg(dep(api_base="ftp://example.com")), "models[0].deployments[0].api_base: expected an http:// "
                 "or https:// URL, got 'ftp://example.com'", id="bad-url"),
    pytest.param(cfg(dep(provider="azure", api_base=None)), "models[0].deployments[0].api_base: required for "
                 "provider 'azure'", id="azure-needs-api-base"),
    pytest.param(cfg(dep(headers={"bad header": "x"})), "models[0].deployments[0].headers: 'bad header' is not a "
                 "valid header name", id="bad-header-name"),
    pytest.param({**cfg(), "server": {"max_body_size": 10}}, "server.max_body_size: expected `int` >= 1024",
                 id="tiny-body-limit"),
    pytest.param({**cfg(), "server": {"port": 70000}}, "server.port: expected `int` <= 65535", id="bad-port"),
    pytest.param([1, 2], "<root>: expected a mapping with a 'models' key, got list", id="root-not-mapping"),
])
def test_error_names_key_and_expectation(data: Any, expected: str) -> None:
    found = problems(data)
    assert any(p.startswith(expected) for p in found), found


def test_unknown_names_list_the_known_ones() -> None:
    [provider] = problems(cfg(dep(provider="no-such-provider")))
    assert "openai" in provider and "azure" in provider and provider.endswith(", got 'no-such-provider'")
    [strategy] = problems(cfg(strategy="no-such-strategy"))
    assert "failover" in strategy and strategy.endswith(", got 'no-such-strategy'")


def test_duplicates_are_all_listed_with_both_places() -> None:
    data = {"models": [
        {"name": "chat", "deployments": [dep(id="a"), dep(id="a")]},
        {"name": "chat", "deployments": [dep(id="b")]},
    ]}
    found = problems(data)
    assert "models[0].deployments[1].id: 'a' is already used by models[0].deployments[0]" in found
    assert "models[1].name: 'chat' is already used by models[0]" in found


def test_cross_field_problems_are_reported_together() -> None:
    found = problems(cfg(dep(id="a", provider="nope"), dep(id="a", api_base="localhost:80")))
    assert len(found) == 3, found


def test_error_message_lists_source_and_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_text("models: []\n", env={}, source="my.yaml")
    text = str(info.value)
    assert text.startswith("my.yaml is invalid:")
    assert "  - models: expected `array` of length >= 1" in text


def test_invalid_yaml_points_at_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        load_text("models:\n  - name: [unclosed\n", env={})
    assert info.value.problems[0].startswith("line ")
    assert "invalid YAML" in info.value.problems[0]


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_file(missing, env={})
    assert str(missing) in info.value.problems[0] and "cannot read" in info.value.problems[0]
