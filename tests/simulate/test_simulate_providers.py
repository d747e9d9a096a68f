"""Every provider is simulated in its own wire protocol: complete answers, streams and embeddings are answered."""

from __future__ import annotations

from typing import Any

import pytest
from simulate_support import run

PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"api_key": "k"},
    "azure": {"api_key": "k", "api_base": "https://example.openai.azure.com"},
    "anthropic": {"api_key": "k"},
    "gemini": {"api_key": "k"},
    "ollama": {},
    "bedrock": {"region": "us-east-1", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "secret"},
}
EMBEDS = {"openai", "azure", "gemini", "ollama"}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_provider_s_chat_streams_and_embeddings_are_simulated_in_its_protocol(provider: str) -> None:
    deployment = {"id": "d", "provider": provider, "model": "m", "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                  **PROVIDERS[provider]}
    models: list[dict[str, Any]] = [{"name": "chat", "deployments": [deployment]}]
    mix: dict[str, Any] = {"chat": 1.0}
    if provider in EMBEDS:
        models.append({"name": "embed", "deployments": [{**deployment, "id": "e"}]})
        mix["embed"] = 0.5
    scenario = {"duration": 30, "traffic": {"rps": 5, "stream_share": 0.5, "prompt_tokens": 100, "output_tokens": 40,
                                            "models": mix}}
    report = run({"models": models}, scenario)
    assert report["availability"] == 1.0, report["upstream_errors"]
    assert report["ttft"] is not None  # streams were answered
    assert report["cost"]["total"] > 0  # usage came back in the protocol's shape and was priced
    if provider in EMBEDS:
        assert report["deployments"]["e"]["requests"] > 0
