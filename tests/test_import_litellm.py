"""``stellwerk import-litellm``: six LiteLLM proxy configs of the kinds its documentation shows, converted.

Each output passes ``stellwerk check`` (with the environment variables the config names set); every key
without a counterpart is reported on stderr.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stellwerk import load_text
from stellwerk.cli import main
from stellwerk.importers.litellm import convert

FIXTURES = Path(__file__).parent / "fixtures" / "litellm"
CONFIGS = sorted(FIXTURES.glob("*.yaml"))


def converted(name: str, capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], str, str]:
    """``(config, its YAML, stderr)`` of ``stellwerk import-litellm FIXTURE``."""
    assert main(["import-litellm", str(FIXTURES / name)]) == 0
    captured = capsys.readouterr()
    return yaml.safe_load(captured.out), captured.out, captured.err


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_output_passes_the_check(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, text, _ = converted(path.name, capsys)
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", text))
    env = {name: "https://example.test" if "BASE" in name else "value-from-env" for name in names}
    config = load_text(text, env=env)
    assert config.models


def test_azure_with_openai_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, err = converted("azure_openai_fallbacks.yaml", capsys)
    gpt4o = config["models"][0]
    assert gpt4o["name"] == "gpt-4o" and gpt4o["strategy"] == "weighted-random"
    azure, openai = gpt4o["deployments"]
    assert azure == {"id": "gpt-4o-azure", "provider": "azure", "model": "gpt-4o-eastus",
                     "api_base": "${AZURE_API_BASE}", "api_key": "${AZURE_API_KEY}", "api_version": "2024-10-21",
                     "rpm": 480, "tpm": 80000, "price": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}
    assert openai["provider"] == "openai" and openai["model"] == "gpt-4o"
    assert gpt4o["retries"] == 2 and gpt4o["timeout"] == 45.0
    assert gpt4o["breaker"] == {"consecutive_failures": 3, "open_time": 30.0}
    assert gpt4o["fallbacks"] == ["gpt-4o-mini"]
    for reported in ("litellm_settings.drop_params", "litellm_settings.set_verbose", "general_settings.master_key"):
        assert reported in err


def test_bedrock_regions_and_latency(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, err = converted("bedrock.yaml", capsys)
    claude, titan = config["models"]
    assert claude["strategy"] == "latency"
    assert claude["deployments"][0]["region"] == "us-west-2"
    assert claude["deployments"][0]["aws_access_key_id"] == "${AWS_ACCESS_KEY_ID}"
    assert claude["deployments"][1]["provider"] == "anthropic"
    assert titan["deployments"][0]["region"] == "${AWS_REGION_NAME:-us-east-1}"
    assert "router_settings.routing_strategy_args" in err and "model_list[2].litellm_params.aws_region_name" in err


def test_usage_based_routing(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, err = converted("usage_based.yaml", capsys)
    chat = config["models"][0]
    assert chat["strategy"] == "usage-aware" and [d["id"] for d in chat["deployments"]] == ["chat-openai", "chat-openai-2"]
    assert all(d["rpm"] == 500 and d["tpm"] == 200000 for d in chat["deployments"])
    assert "router_settings.redis_host" in err and "router_settings.enable_pre_call_checks" in err


def test_ollama_and_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = converted("ollama_local.yaml", capsys)
    llama, embed = config["models"]
    ollama, vllm = llama["deployments"]
    assert (ollama["provider"], ollama["model"], ollama["api_base"]) == ("ollama", "llama3.1:8b", "http://localhost:11434")
    assert (vllm["provider"], vllm["model"]) == ("openai", "meta-llama/Meta-Llama-3.1-8B-Instruct")
    assert embed["deployments"][0]["api_base"] == "http://localhost:11434"
    assert llama["timeout"] == 120.0 and llama["retries"] == 1


def test_open_hosts_prices_and_order(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, _ = converted("open_hosts_cost.yaml", capsys)
    fast, reasoner = config["models"]
    assert fast["strategy"] == "cost"
    assert fast["deployments"][0]["api_base"] == "https://api.groq.com/openai/v1"
    assert fast["deployments"][0]["price"] == {"input_per_mtok": 0.05, "output_per_mtok": 0.08}
    assert reasoner["strategy"] == "failover"  # an order given: listed by priority
    assert [d["priority"] for d in reasoner["deployments"]] == [1, 2]
    assert reasoner["deployments"][1]["model"] == "deepseek/deepseek-r1"


def test_context_fallbacks_unknown_providers_and_models(capsys: pytest.CaptureFixture[str]) -> None:
    config, _, err = converted("gemini_context_fallbacks.yaml", capsys)
    names = [m["name"] for m in config["models"]]
    assert names == ["small-context", "long-context"]  # vertex_ai is not supported: reported, left out
    small, long_context = config["models"]
    assert small["deployments"][0]["context_window"] == 16385
    assert small["context_window_fallbacks"] == ["long-context"] and small["content_policy_fallbacks"] == ["long-context"]
    assert long_context["fallbacks"] == ["small-context"]
    assert "provider 'vertex_ai' is not supported" in err and "missing-model: no such model" in err
    assert "litellm_settings.cache" in err


def test_nothing_to_convert_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("general_settings: {}\n")
    assert main(["import-litellm", str(path)]) == 1
    assert "model_list" in capsys.readouterr().err
    assert convert([1, 2]).problems
