"""``ab`` through the gateway: sticky variants (across requests and restarts), splits, experiment stats,
a canary moved at run time."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from test_e2e_support import Routed, StartSim, routed

from support import config, deployment, model

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
USERS = [f"user-{i}" for i in range(150)]


def variants(*split: tuple[str, str, float]) -> dict[str, Any]:
    return {"variants": [{"name": name, "deployments": [dep], "percent": percent} for name, dep, percent in split]}


async def assignments(gw: Routed, model_name: str, users: list[str]) -> dict[str, str]:
    """The deployment that answered each user's request."""
    result = {}
    for user in users:
        answer = await gw.chat(model_name, user=user)
        assert answer.status == 200, answer.body
        result[user] = answer.deployment
    return result


async def test_sticky_80_20_split_survives_a_restart(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(model("exp", deployment("a", a.base_url), deployment("b", b.base_url), strategy="ab",
                        strategy_options=variants(("control", "a", 80), ("treatment", "b", 20))))
    async with routed(data) as gw:
        first = await assignments(gw, "exp", USERS)
        assert await assignments(gw, "exp", USERS[:60]) == {u: first[u] for u in USERS[:60]}
        answer = await gw.chat("exp", user="user-7")
        assert re.fullmatch(rf"ab: {first['user-7']} \(variant (control|treatment), bucket \d+ by user\)", answer.route)
        # Without a "user" field, the x-stellwerk-user header keeps a client sticky.
        by_header = await gw.chat("exp", headers={"x-stellwerk-user": "user-7"})
        assert by_header.deployment == first["user-7"]
    split = Counter(first.values())
    assert 0.12 <= split["b"] / len(USERS) <= 0.28  # 20% expected
    async with routed(data) as restarted:  # a new gateway with the same config
        assert await assignments(restarted, "exp", USERS[:60]) == {u: first[u] for u in USERS[:60]}


async def test_experiments_report_counts_latency_errors_and_cost(start_sim: StartSim) -> None:
    a, b = await start_sim(latency_ms=2.0), await start_sim(latency_ms=2.0)
    data = config(model("exp", deployment("a", a.base_url, price=PRICE), deployment("b", b.base_url, price=PRICE),
                        strategy="ab", retries=0,
                        strategy_options=variants(("control", "a", 50), ("treatment", "b", 50))))
    async with routed(data) as gw:
        first = await assignments(gw, "exp", USERS[:40])
        report = (await gw.admin("GET", "/admin/experiments")).json["exp"]
        counts = Counter(first.values())
        control, treatment = report["variants"]["control"], report["variants"]["treatment"]
        assert (control["requests"], treatment["requests"]) == (counts["a"], counts["b"])
        assert control["errors"] == treatment["errors"] == 0
        assert 0 < control["latency_mean"] <= control["latency_max"]
        assert control["cost_total"] > 0 and abs(control["cost_mean"] * counts["a"] - control["cost_total"]) < 1e-12
        assert [v["percent"] for v in report["assignment"]["variants"]] == [50, 50]

        # The treatment breaks: its users are served by the control (fallback), and it shows as errors.
        b.update(error_rate=1.0, error_statuses=[500])
        treated = [u for u in USERS[:40] if first[u] == "b"]
        again = await assignments(gw, "exp", treated[:5])
        assert set(again.values()) == {"a"}
        report = (await gw.admin("GET", "/admin/experiments")).json["exp"]["variants"]
    assert report["treatment"]["errors"] >= 1
    assert report["treatment"]["error_rate"] > 0
    assert report["control"]["requests"] == counts["a"] + 5


async def test_streamed_requests_count_in_experiments(start_sim: StartSim) -> None:
    a = await start_sim()
    data = config(model("exp", deployment("a", a.base_url, price=PRICE), strategy="ab",
                        strategy_options=variants(("only", "a", 100))))
    async with routed(data) as gw:
        stream = await gw.sdk.chat.completions.create(
            model="exp", messages=[{"role": "user", "content": "Hi"}], stream=True, user="user-1",
            stream_options={"include_usage": True})
        async for _ in stream:
            pass
        report = (await gw.admin("GET", "/admin/experiments")).json["exp"]["variants"]
    assert a.stats.ok == 1
    assert report.get("only", {}).get("requests") == 1, report


async def test_canary_moves_from_5_to_50_percent_without_restart(start_sim: StartSim) -> None:
    stable, canary = await start_sim(), await start_sim()
    data = config(model("svc", deployment("stable", stable.base_url), deployment("canary", canary.base_url),
                        strategy="ab", strategy_options=variants(("stable", "stable", 95), ("canary", "canary", 5))))
    async with routed(data) as gw:
        before = await assignments(gw, "svc", USERS)
        assert sum(d == "canary" for d in before.values()) <= 0.10 * len(USERS)

        moved = await gw.admin("PUT", "/admin/models/svc/strategy",
                               variants(("stable", "stable", 50), ("canary", "canary", 50)))
        assert moved.status == 200, moved.body
        after = await assignments(gw, "svc", USERS)
        report = (await gw.admin("GET", "/admin/experiments")).json["svc"]
    assert 0.38 <= sum(d == "canary" for d in after.values()) / len(USERS) <= 0.62
    # Raising the canary only moves users into it: nobody leaves it.
    assert all(after[u] == "canary" for u in USERS if before[u] == "canary")
    assert [v["percent"] for v in report["assignment"]["variants"]] == [50, 50]
    assert report["variants"]["canary"]["requests"] == sum(d == "canary" for d in [*before.values(), *after.values()])


async def test_runtime_strategy_updates_are_validated(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(
        model("svc", deployment("a", a.base_url), deployment("b", b.base_url), strategy="ab",
              strategy_options=variants(("stable", "a", 95), ("canary", "b", 5))),
        model("fast", deployment("c", a.base_url), strategy="latency"),
    )
    async with routed(data) as gw:
        bad_sum = await gw.admin("PUT", "/admin/models/svc/strategy", variants(("stable", "a", 50), ("canary", "b", 40)))
        assert bad_sum.status == 400
        assert "add up to 90" in bad_sum.json["error"]["message"]
        unknown_key = await gw.admin("PUT", "/admin/models/svc/strategy", {**variants(("all", "a", 100)), "stiky": "user"})
        assert unknown_key.status == 400
        assert "stiky: unknown key" in unknown_key.json["error"]["message"]
        no_model = await gw.admin("PUT", "/admin/models/nope/strategy", variants(("all", "a", 100)))
        assert no_model.status == 404
        fixed = await gw.admin("PUT", "/admin/models/fast/strategy", {"explore_probability": 0.5})
        assert fixed.status == 400
        assert "cannot change its options at run time" in fixed.json["error"]["message"]
        assert (await gw.chat("svc", user="u")).status == 200  # nothing above changed the experiment


async def test_runtime_variants_must_name_deployments_of_the_model(start_sim: StartSim) -> None:
    # As when the config is loaded ("variant 'x' names unknown deployment 'zz'").
    a, b = await start_sim(), await start_sim()
    data = config(model("svc", deployment("a", a.base_url), deployment("b", b.base_url), strategy="ab",
                        strategy_options=variants(("stable", "a", 95), ("canary", "b", 5))))
    async with routed(data) as gw:
        unknown = await gw.admin("PUT", "/admin/models/svc/strategy", variants(("stable", "a", 50), ("canary", "zz", 50)))
    assert unknown.status == 400, "a variant naming an unknown deployment was accepted"
    assert "zz" in unknown.json["error"]["message"]


async def test_runtime_update_of_a_task_model_says_it_cannot(start_sim: StartSim) -> None:
    sim = await start_sim()
    data = config(model("plain", deployment("a", sim.base_url)),
                  model("auto", deployment("b", sim.base_url), strategy="task", strategy_options={
                      "default": "any", "routes": [{"name": "any", "target": "plain", "examples": []}]}))
    async with routed(data) as gw:
        answer = await gw.admin("PUT", "/admin/models/auto/strategy", {"default": "any"})
    assert answer.status == 400
    # Not "strategy: expected one of ab, cost, ..., got 'task'": task is a valid strategy.
    assert "cannot change its options at run time" in answer.json["error"]["message"], answer.json
