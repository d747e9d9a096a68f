"""Explainability through the gateway: the ``x-stellwerk-route`` header on every proxied answer, the
``GET|POST /admin/route`` dry run (the decision record, nothing sent upstream), tag filters."""

from __future__ import annotations

import re
from typing import Any

from test_e2e_support import StartSim, VirtualClock, routed, served

from support import config, deployment, model, request

STRATEGIES: dict[str, dict[str, Any]] = {
    "failover": {},
    "weighted": {},
    "weighted-random": {},
    "least-busy": {},
    "latency": {},
    "throughput": {},
    "cost": {},
    "usage-aware": {},
    "ab": {"variants": [{"name": "one", "deployments": ["ab-1"], "percent": 50},
                        {"name": "two", "deployments": ["ab-2"], "percent": 50}]},
}


def every_strategy(url_1: str, url_2: str) -> dict[str, Any]:
    """One model per strategy, named after it, with deployments ``<strategy>-1`` and ``<strategy>-2``."""
    return config(*(
        model(name, deployment(f"{name}-1", url_1, price={"input_per_mtok": 1.0}, rpm=1000, priority=1),
              deployment(f"{name}-2", url_2, price={"input_per_mtok": 2.0}, rpm=1000, priority=2),
              strategy=name, strategy_options=options)
        for name, options in STRATEGIES.items()))


async def test_every_proxied_answer_names_the_strategy_and_the_deployment(start_sim: StartSim) -> None:
    one, two = await start_sim(), await start_sim()
    async with routed(every_strategy(one.base_url, two.base_url)) as gw:
        for name in STRATEGIES:
            raw = await gw.sdk.chat.completions.with_raw_response.create(
                model=name, messages=[{"role": "user", "content": "Hi"}], user="someone")
            served_by = raw.headers["x-stellwerk-deployment"]
            assert re.match(rf"{name}: {served_by} \(.+\)", raw.headers["x-stellwerk-route"]), raw.headers

            streamed = await gw.sdk.chat.completions.with_raw_response.create(
                model=name, messages=[{"role": "user", "content": "Hi"}], user="someone", stream=True)
            served_by = streamed.headers["x-stellwerk-deployment"]
            assert re.match(rf"{name}: {served_by} \(.+\)", streamed.headers["x-stellwerk-route"]), streamed.headers
            async for _ in streamed.parse():
                pass

            messages = await request(gw.gateway.port, "POST", "/v1/messages", {
                "model": name, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]})
            assert messages.status == 200, messages.body
            assert re.match(rf"{name}: {messages.headers['x-stellwerk-deployment']} \(", messages.headers["x-stellwerk-route"])


async def test_embeddings_answers_carry_the_route_header(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with routed(config(model("embed", deployment("e-1", sim.base_url), deployment("e-2", sim.base_url),
                                   strategy="weighted"))) as gw:
        raw = await gw.sdk.embeddings.with_raw_response.create(model="embed", input=["a", "b"])
    assert raw.headers["x-stellwerk-deployment"] == "e-1"
    assert raw.headers.get("x-stellwerk-route", "").startswith("weighted: e-1 ("), dict(raw.headers)


async def test_dry_run_returns_the_decision_record_and_sends_nothing(start_sim: StartSim) -> None:
    clock = VirtualClock()  # the sims' latencies move the router's clock: exact, whatever the machine does
    fast = await start_sim(latency_ms=1.0, clock=clock, sleep=clock.sleep)
    slow = await start_sim(latency_ms=250.0, clock=clock, sleep=clock.sleep)
    cheap = {"price": {"input_per_mtok": 0.5, "output_per_mtok": 1.0}}
    data = config(
        model("quick", deployment("fast", fast.base_url), deployment("slow", slow.base_url), strategy="latency",
              strategy_options={"min_observations": 1, "explore_probability": 0.0}),
        model("thrifty", deployment("no-tools", fast.base_url, supports_tools=False, **cheap),
              deployment("tools", slow.base_url, price={"input_per_mtok": 2.0, "output_per_mtok": 4.0}), strategy="cost"),
    )
    async with routed(data, clock=clock) as gw:
        for _ in range(6):
            await gw.chat("quick")
        sent = [fast.stats.requests, slow.stats.requests]

        answer = await gw.admin("GET", "/admin/route", model="quick", prompt="What is the weather like?")
        assert answer.status == 200, answer.body
        (step,) = answer.json["steps"]
        assert step["strategy"] == "latency"
        assert step["order"] == ["fast", "slow"]
        assert step["summary"].startswith("latency: fast (p2c: ewma ")
        assert [s["id"] for s in step["scores"]] == ["fast", "slow"]
        assert step["scores"][0]["score"] < step["scores"][1]["score"]
        figures = {c["id"]: c for c in step["candidates"]}
        assert figures["fast"]["latency"] < figures["slow"]["latency"]
        assert figures["fast"]["observations"] + figures["slow"]["observations"] == 6
        assert {"in_flight", "ttft", "tokens_per_second", "rpm_used", "healthy", "tags"} <= set(figures["fast"])
        assert answer.json["breakers"] == {"fast": "closed", "slow": "closed"}

        posted = await gw.admin("POST", "/admin/route", {
            "model": "thrifty", "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]})
        (step,) = posted.json["steps"]
        assert step["order"] == ["tools"]
        assert step["removed"] == [["no-tools", "capability", "no tools"]]
        assert {c["id"] for c in step["candidates"]} == {"no-tools", "tools"}  # removed ones are shown too
        plain = (await gw.admin("GET", "/admin/route", model="thrifty")).json["steps"][0]
        assert plain["order"] == ["no-tools", "tools"] and plain["removed"] == []

        assert [fast.stats.requests, slow.stats.requests] == sent  # nothing was sent upstream
        assert (await gw.admin("GET", "/admin/route", model="nope")).status == 404
        assert (await gw.admin("GET", "/admin/route")).status == 400


async def test_tags_restrict_the_deployments(start_sim: StartSim) -> None:
    eu_1, eu_2, us = await start_sim(), await start_sim(), await start_sim()
    deps = [deployment("eu-1", eu_1.base_url, tags={"region": "eu"}),
            deployment("eu-2", eu_2.base_url, tags={"region": "eu", "gpu": "h100"}),
            deployment("us-1", us.base_url, tags={"region": "us"})]
    data = config(model("chat", *deps, strategy="weighted"),
                  model("eu-only", *[{**d, "id": f"{d['id']}-b"} for d in deps], strategy="weighted",
                        require_tags={"region": "eu"}))
    async with routed(data) as gw:
        for _ in range(12):
            answer = await gw.chat("chat", headers={"x-stellwerk-tags": "region=eu"})
            assert answer.deployment in ("eu-1", "eu-2")
        assert "us-1 removed by tags: needs region=eu (has us)" in answer.route
        assert served(eu_1, eu_2, us) == [6, 6, 0]

        assert {(await gw.chat("chat", headers={"x-stellwerk-tags": "region=eu,gpu"})).deployment
                for _ in range(3)} == {"eu-2"}  # a bare key: the tag with any value
        assert (await gw.chat("chat", metadata={"stellwerk_tags": "region=us"})).deployment == "us-1"
        assert {(await gw.chat("eu-only")).deployment for _ in range(4)} == {"eu-1-b", "eu-2-b"}

        dry = await gw.admin("GET", "/admin/route", headers={"x-stellwerk-tags": "region=eu"}, model="chat")
        assert dry.json["steps"][0]["removed"] == [["us-1", "tags", "needs region=eu (has us)"]]
        before = served(eu_1, eu_2, us)
        nowhere = await gw.chat("chat", headers={"x-stellwerk-tags": "region=mars"})
        assert nowhere.status >= 400
        assert served(eu_1, eu_2, us) == before


async def test_candidates_carry_their_position_in_the_config(start_sim: StartSim) -> None:
    sim = await start_sim()
    data = config(model("chat", *(deployment(f"d{i}", sim.base_url) for i in range(3)), strategy="weighted"))
    async with routed(data) as gw:
        step = (await gw.admin("GET", "/admin/route", model="chat")).json["steps"][0]
    assert [(c["id"], c["index"]) for c in step["candidates"]] == [("d0", 0), ("d1", 1), ("d2", 2)]


async def test_a_required_tag_is_honoured_whatever_the_strategy(start_sim: StartSim) -> None:
    # No deployment carries region=eu: a request requiring it is refused alike by failover and weighted,
    # instead of failover (whose untagged models take a fast path without filters) ignoring the header.
    sim = await start_sim()
    data = config(model("fo", deployment("a", sim.base_url)), model("w", deployment("b", sim.base_url), strategy="weighted"))
    async with routed(data) as gw:
        weighted = await gw.chat("w", headers={"x-stellwerk-tags": "region=eu"})
        failover = await gw.chat("fo", headers={"x-stellwerk-tags": "region=eu"})
    assert weighted.status >= 400
    assert failover.status == weighted.status, failover.headers.get("x-stellwerk-route")
    assert sim.stats.requests == 0
