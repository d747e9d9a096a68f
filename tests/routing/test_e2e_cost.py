"""``cost`` through the gateway: the cheapest deployment that can serve the request, ``min_tier`` floors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_e2e_support import StartSim, routed, served

from support import config, deployment, model

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PICTURE = [{"role": "user", "content": [
    {"type": "text", "text": "What is in this picture?"},
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAE="}}]}]
LONG = "Please summarize the following notes. " + "The quarterly figures were discussed at length. " * 300


@pytest.fixture
async def tiers(start_sim: StartSim) -> dict[str, Any]:
    """Three sims, cheapest first: ``cheap`` (no tools, images or JSON mode, 600-token window, tier 1),
    ``mid`` (no images, tier 2), ``premium`` (everything, tier 3)."""
    sims = {name: await start_sim() for name in ("cheap", "mid", "premium")}
    fields: dict[str, dict[str, Any]] = {
        "cheap": {"price": {"input_per_mtok": 0.1, "output_per_mtok": 0.4}, "tier": 1, "supports_tools": False,
                  "supports_vision": False, "supports_json": False, "context_window": 600},
        "mid": {"price": {"input_per_mtok": 1.0, "output_per_mtok": 4.0}, "tier": 2, "supports_vision": False},
        "premium": {"price": {"input_per_mtok": 5.0, "output_per_mtok": 15.0}, "tier": 3},
    }
    listed = ("premium", "mid", "cheap")  # listed most expensive first: the order comes from the prices

    def deployments(suffix: str = "") -> list[dict[str, Any]]:
        return [deployment(f"{n}{suffix}", sims[n].base_url, **fields[n]) for n in listed]

    data = config(
        model("chat", *deployments(), strategy="cost"),
        model("good", *deployments("-2"), strategy="cost", strategy_options={"min_tier": 2}),
        model("best", *deployments("-3"), strategy="cost", strategy_options={"min_tier": 3}),
    )
    return {"sims": sims, "config": data}


def counts(tiers: dict[str, Any]) -> list[int]:
    return served(*tiers["sims"].values())


async def test_cheapest_deployment_answers(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        raw = await gw.sdk.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Hi"}])
        assert raw.headers["x-stellwerk-deployment"] == "cheap"
        route = raw.headers["x-stellwerk-route"]
        assert re.fullmatch(r"cost: cheap \(\$0\.\d{6} vs \$0\.\d{6}\)", route), route
        for _ in range(5):
            assert (await gw.chat("chat")).deployment == "cheap"
    assert counts(tiers) == [6, 0, 0]


async def test_tools_skip_a_deployment_without_tool_support(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        raw = await gw.sdk.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[TOOL])
        assert raw.headers["x-stellwerk-deployment"] == "mid"
        assert "cheap removed by capability: no tools" in raw.headers["x-stellwerk-route"]
        # tool_choice "none" needs no tool support: the cheapest is fine again.
        assert (await gw.chat("chat", tools=[TOOL], tool_choice="none")).deployment == "cheap"
    assert counts(tiers) == [1, 1, 0]


async def test_images_skip_deployments_without_vision(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        raw = await gw.sdk.chat.completions.with_raw_response.create(model="chat", messages=PICTURE)  # type: ignore[arg-type]
        assert raw.headers["x-stellwerk-deployment"] == "premium"
        route = raw.headers["x-stellwerk-route"]
        assert "mid removed by capability: no images" in route
        assert "cheap removed by capability: " in route  # an image also counts hundreds of prompt tokens
    assert counts(tiers) == [0, 0, 1]


async def test_json_mode_skips_a_deployment_without_it(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        answer = await gw.chat("chat", "Reply with a JSON object", response_format={"type": "json_object"})
        assert answer.deployment == "mid"
        assert "cheap removed by capability: no JSON mode" in answer.route
    assert counts(tiers) == [0, 1, 0]


async def test_long_prompt_skips_a_small_context_window(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        answer = await gw.chat("chat", LONG)
        assert answer.status == 200
        assert answer.deployment == "mid"
        assert re.search(r"cheap removed by capability: context: needs ~\d+ tokens, window 600", answer.route)
        # A short prompt whose max_tokens would overflow the window skips it too.
        assert (await gw.chat("chat", "Hi", max_tokens=1000)).deployment == "mid"
        assert (await gw.chat("chat", "Hi", max_tokens=100)).deployment == "cheap"
    assert counts(tiers) == [1, 2, 0]


async def test_min_tier_floors(tiers: dict[str, Any]) -> None:
    async with routed(tiers["config"]) as gw:
        good = await gw.chat("good")
        best = await gw.chat("best")
    assert good.deployment == "mid-2"
    assert good.route.startswith("cost: mid-2 (") and good.route.endswith("; 1 below tier 2)")
    assert best.deployment == "premium-3"
    assert best.route.endswith("; 2 below tier 3)")
    assert counts(tiers) == [0, 1, 1]
