"""Scenarios whose answer is known, run through the real router in virtual time."""

from __future__ import annotations

from simulate_support import FAST, NO_BREAKER, config, dep, run


def traffic(rps: float = 20, **fields: object) -> dict[str, object]:
    return {"rps": rps, "prompt_tokens": 100, "output_tokens": 50, **fields}


def test_a_deployment_down_30_percent_of_the_time_is_70_percent_available_and_a_failover_pair_about_100() -> None:
    down = {**FAST, "outages": [{"start": 60, "end": 120}]}  # 60 of 200 seconds
    scenario = {"duration": 200, "traffic": traffic(), "deployments": {"a": down, "b": FAST}}
    alone = run(config(dep("a")), scenario | {"deployments": {"a": down}})
    pair = run(config(dep("a"), dep("b"), strategy="failover"), scenario)
    assert 0.68 <= alone["availability"] <= 0.72
    assert alone["errors"]  # the failures are the router's answers, by status
    assert pair["availability"] >= 0.999
    assert pair["deployments"]["b"]["share"] > 0.25  # b answered while a was down


def test_weighted_3_to_1_gives_75_25_within_one_percent() -> None:
    scenario = {"duration": 200, "traffic": traffic(), "deployments": {"a": FAST, "b": FAST}}
    smooth = run(config(dep("a", weight=3), dep("b", weight=1), strategy="weighted"), scenario)
    assert smooth["requests"] > 3500
    assert abs(smooth["deployments"]["a"]["share"] - 0.75) <= 0.01
    assert abs(smooth["deployments"]["b"]["share"] - 0.25) <= 0.01
    # weighted-random draws each pick: its share is binomial, within 3 standard deviations (2.1 % at 3,900)
    drawn = run(config(dep("a", weight=3), dep("b", weight=1), strategy="weighted-random"), scenario)
    sigma = (0.75 * 0.25 / drawn["requests"]) ** 0.5
    assert abs(drawn["deployments"]["a"]["share"] - 0.75) <= 3 * sigma


def test_cost_routing_picks_the_cheapest_capable_deployment() -> None:
    cheap_small = dep("cheap", context_window=1000, price={"input_per_mtok": 0.1, "output_per_mtok": 0.4})
    middle = dep("middle", price={"input_per_mtok": 1, "output_per_mtok": 4})
    dear = dep("dear", price={"input_per_mtok": 5, "output_per_mtok": 20})
    scenario = {"duration": 100, "traffic": traffic(prompt_tokens={"median": 800, "p99": 3000}),
                "deployments": {d: FAST for d in ("cheap", "middle", "dear")}}
    report = run(config(dear, middle, cheap_small, strategy="cost"), scenario)
    shares = {d: v["share"] for d, v in report["deployments"].items()}
    assert shares["dear"] == 0  # never the most expensive while a cheaper one can answer
    assert shares["cheap"] > 0.5  # the cheapest, for every prompt that fits its window
    assert shares["middle"] > 0.1  # the prompts that do not fit go to the next cheapest
    assert report["availability"] == 1.0
    without_cheap = scenario | {"deployments": {"middle": FAST, "dear": FAST}}
    everything_to_middle = run(config(dear, middle, strategy="cost"), without_cheap)
    assert report["cost"]["total"] < everything_to_middle["cost"]["total"]


def test_a_breaker_bounds_attempts_per_request_while_a_deployment_is_down() -> None:
    # 40 s at 20 rps: fewer failures than the highest consecutive_failures, so NO_BREAKER never trips
    scenario = {"duration": 40, "traffic": traffic(),
                "deployments": {"a": {**FAST, "outages": [{"start": 0, "end": 40}]}, "b": FAST}}
    pair = [dep("a"), dep("b")]
    guarded = run(config(*pair, strategy="failover", retries=2), scenario)
    unguarded = run(config(*pair, strategy="failover", retries=2, breaker=NO_BREAKER), scenario)
    assert guarded["availability"] == unguarded["availability"] == 1.0
    assert guarded["attempts_per_request"] < 1.1  # a's breaker is open: straight to b
    assert unguarded["attempts_per_request"] >= 1.9  # every request tries a first
    assert guarded["outages"][0]["detected_after"] is not None
    assert unguarded["outages"][0]["detected_after"] is None


def test_hedging_lowers_p99_under_a_heavy_tail() -> None:
    tail = {"ttft": {"median": 0.2, "p99": 8.0}, "tokens_per_second": 0}
    scenario = {"duration": 200, "traffic": traffic(10), "deployments": {"a": tail, "b": tail}}
    pair = [dep("a"), dep("b")]
    plain = run(config(*pair, strategy="failover"), scenario)
    hedged = run(config(*pair, strategy="failover", hedge={"delay": 0.5}), scenario)
    assert plain["latency"]["p99"] > 4.0
    assert hedged["latency"]["p99"] < plain["latency"]["p99"] / 2
    assert hedged["attempts_per_request"] > plain["attempts_per_request"]  # paid for with extra attempts
