"""``stellwerk_ratelimit_rejections_total{scope}`` counts what each scope of limit refused: a key's, a team's
(rpm and budget alike) and every deployment at its own rpm; other errors are not counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from keys_support import admin, create_key, governed_config, start_governed
from prometheus_client.parser import text_string_to_metric_families

from support import GUARD, USER


async def _rejections(gateway: Any) -> dict[str, float]:
    async with admin(gateway) as client:
        text = (await client.get("/metrics")).text
    return {sample.labels["scope"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "stellwerk_ratelimit_rejections_total"}


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
            async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key["key"], max_retries=0,
                                          timeout=GUARD) as client:
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
