"""Metrics of keys: ``stellwerk_ratelimit_rejections_total{scope}`` counts what each scope of limit refused (a
key's, a team's, every deployment at its own rpm; other errors are not counted), and with
``server.metrics_per_key`` requests, tokens and dollars are exported by key id, matching the traffic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from keys_support import admin, create_key, governed_config, start_governed
from prometheus_client.parser import text_string_to_metric_families

from support import GUARD, USER


async def _samples(gateway: Any, name: str) -> list[Any]:
    async with admin(gateway) as client:
        text = (await client.get("/metrics")).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == name]


async def _rejections(gateway: Any) -> dict[str, float]:
    return {s.labels["scope"]: s.value for s in await _samples(gateway, "stellwerk_ratelimit_rejections_total")}


def _oai(gateway: Any, key: dict[str, Any]) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0, timeout=GUARD)


async def test_rejections_are_counted_by_scope(start_sim: Any, tmp_path: Path) -> None:
    sim = await start_sim()
    data = governed_config(sim.base_url, tmp_path / "stw.db")
    data["models"].append({"name": "narrow", "deployments": [{"id": "n", "provider": "openai", "model": "sim-model",
                                                              "api_base": sim.base_url, "rpm": 1}]})
    gateway = await start_governed(data)
    try:
        async with admin(gateway) as client:
            assert (await client.post("/admin/teams", json={"name": "blue", "rpm": 1})).status_code == 201
        single, wide, teamed = (await create_key(gateway, rpm=1), await create_key(gateway),
                                await create_key(gateway, team="blue"))

        async def ask(key: dict[str, Any], model: str = "chat") -> None:
            async with _oai(gateway, key) as client:
                await client.chat.completions.create(model=model, messages=USER, max_tokens=4)

        await ask(single)
        for _ in range(2):
            with pytest.raises(openai.RateLimitError):
                await ask(single)  # the key's rpm
        await ask(teamed)
        with pytest.raises(openai.RateLimitError):
            await ask(teamed)  # the team's rpm
        await ask(wide, "narrow")
        with pytest.raises(openai.RateLimitError):
            await ask(wide, "narrow")  # the only deployment is at its rpm
        with pytest.raises(openai.NotFoundError):
            await ask(wide, "no-such-model")  # not a rate limit: not counted
        assert await _rejections(gateway) == {"key": 2, "team": 1, "deployment": 1}
    finally:
        await gateway.close(grace=1.0)


@pytest.mark.parametrize("per_key", [True, False])
async def test_metrics_per_key(governed: Any, per_key: bool) -> None:
    gateway = await governed(metrics_per_key=per_key)
    async with admin(gateway) as client:
        assert (await client.post("/admin/teams", json={"name": "blue"})).status_code == 201
    first, second = await create_key(gateway), await create_key(gateway, team="blue")
    costs: dict[str, float] = {first["id"]: 0.0, second["id"]: 0.0}
    for key, times in ((first, 3), (second, 2)):
        async with _oai(gateway, key) as client:
            for _ in range(times):
                raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, max_tokens=4)
                costs[key["id"]] += float(raw.headers["x-stellwerk-cost"])
    requests = await _samples(gateway, "stellwerk_key_requests_total")
    if not per_key:  # off by default: no series per key anywhere
        async with admin(gateway) as client:
            assert first["id"] not in (await client.get("/metrics")).text
        assert requests == []
        return
    found = {(s.labels["key_id"], s.labels["team"], s.labels["status"]): s.value for s in requests}
    assert found == {(first["id"], "", "200"): 3, (second["id"], "blue", "200"): 2}
    spent = {s.labels["key_id"]: s.value for s in await _samples(gateway, "stellwerk_key_cost_usd_total")}
    assert spent == pytest.approx(costs, rel=1e-6) and all(spent.values())
    tokens = {(s.labels["key_id"], s.labels["kind"]): s.value for s in await _samples(gateway, "stellwerk_key_tokens_total")}
    assert tokens[first["id"], "completion"] > tokens[second["id"], "completion"] > 0
