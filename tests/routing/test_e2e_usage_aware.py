"""``usage-aware`` and the limits filter through the gateway: configured rpm/tpm, provider rate-limit headers.

Counts come from the simulated providers (``sim.stats.requests``: every request that reached them).
The router's clock is moved forward to cross the 60-second windows.
"""

from __future__ import annotations

import asyncio

from test_e2e_support import SkewClock, StartSim, routed, served

from support import config, deployment, model


async def test_a_burst_never_exceeds_rpm_and_the_window_reopens(start_sim: StartSim) -> None:
    a, b = await start_sim(latency_ms=30.0), await start_sim(latency_ms=30.0)
    data = config(model("chat", deployment("a", a.base_url, rpm=5), deployment("b", b.base_url, rpm=3),
                        strategy="usage-aware"))
    clock = SkewClock()
    async with routed(data, clock=clock) as gw:
        burst = await asyncio.gather(*(gw.chat("chat") for _ in range(12)))
        ok = [x for x in burst if x.status == 200]
        assert len(ok) == 8
        assert [a.stats.requests, b.stats.requests] == [5, 3]
        assert {x.deployment for x in ok} == {"a", "b"}
        # Still within the minute: nothing more reaches them.
        later = [await gw.chat("chat") for _ in range(3)]
        assert all(x.status != 200 for x in later)
        assert [a.stats.requests, b.stats.requests] == [5, 3]

        clock.advance(61.0)
        again = await asyncio.gather(*(gw.chat("chat") for _ in range(10)))
        assert sum(x.status == 200 for x in again) == 8
        assert [a.stats.requests, b.stats.requests] == [10, 6]


async def test_the_deployment_with_most_headroom_goes_first(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(model("chat", deployment("a", a.base_url, rpm=4), deployment("b", b.base_url, rpm=8),
                        strategy="usage-aware"))
    async with routed(data, clock=SkewClock()) as gw:
        answers = [await gw.chat("chat") for _ in range(12)]
    # b starts with more room (7/8 left after the request vs 3/4); ties go to the listed first.
    assert [x.deployment for x in answers[:5]] == ["b", "a", "b", "b", "a"]
    assert answers[0].route == "usage-aware: b (headroom 88% vs 75%)"
    assert all(x.status == 200 for x in answers)
    assert served(a, b) == [4, 8]


async def test_all_at_their_limit_answers_429_naming_the_limits(start_sim: StartSim) -> None:
    # The strategy's documented contract: "when all are left out the order is empty and the router answers 429".
    a = await start_sim()
    data = config(model("chat", deployment("a", a.base_url, rpm=1), strategy="usage-aware"))
    async with routed(data, clock=SkewClock()) as gw:
        assert (await gw.chat("chat")).status == 200
        refused = await gw.chat("chat")
    assert a.stats.requests == 1
    assert refused.status == 429, refused.body
    assert "rpm" in refused.body["error"]["message"]


async def test_a_burst_never_exceeds_tpm(start_sim: StartSim) -> None:
    # Each request is estimated at prompt + max_tokens (~26 tokens) and answers 16 tokens: 3 fit in 100 tokens.
    a = await start_sim(latency_ms=50.0, output_tokens=16)
    data = config(model("chat", deployment("a", a.base_url, tpm=100), strategy="usage-aware"))
    async with routed(data, clock=SkewClock()) as gw:
        one = await gw.chat("chat", max_tokens=16)
        used = one.body["usage"]["total_tokens"]
        assert one.status == 200 and used <= 30
        burst = await asyncio.gather(*(gw.chat("chat", max_tokens=16) for _ in range(10)))
    served_tokens = used * (1 + sum(x.status == 200 for x in burst))
    assert served_tokens <= 100, f"{a.stats.requests} requests, ~{served_tokens} tokens within the minute"


async def test_a_providers_429_does_not_bench_a_deployment_for_good(start_sim: StartSim) -> None:
    # The sim's 429 carries x-ratelimit-remaining-requests: 0 and x-ratelimit-reset-requests: 1s.
    a, b = await start_sim(rate_limit_rate=1.0, retry_after_s=1.0), await start_sim()
    data = config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url), strategy="weighted",
                        retries=0))
    clock = SkewClock()
    async with routed(data, clock=clock) as gw:
        first = await gw.chat("chat")
        assert first.status == 200 and first.deployment == "b"
        assert a.stats.rate_limited == 1
        a.update(rate_limit_rate=0.0)
        clock.advance(120.0)  # well past the provider's reset, and past any per-minute window
        answers = [await gw.chat("chat") for _ in range(10)]
        route = await gw.admin("GET", "/admin/route", model="chat")
    removed = route.json["steps"][-1]["removed"]
    assert a.stats.ok >= 4, f"a served {a.stats.ok} of 10 after its 429; removed: {removed}"
    assert all(x.status == 200 for x in answers)
