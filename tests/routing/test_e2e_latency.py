"""``latency`` (power of two choices over peak-EWMA) through the gateway, fed by the answers themselves.

The fast deployment takes the traffic once both are known; when it slows down, its next answer
raises its peak and the traffic moves at once; when it is fast again, it wins the traffic back
once its peak has decayed. Virtual time: the simulated providers' latencies move the router's clock,
so the latencies it measures are exactly the configured ones, whatever the machine is doing.
"""

from __future__ import annotations

import re

from test_e2e_support import Routed, StartSim, VirtualClock, routed, served

from support import config, deployment, model

OPTIONS = {"min_observations": 2, "explore_probability": 0.0}


async def _sends(gw: Routed, n: int) -> list[str]:
    return [(await gw.chat("chat")).deployment for _ in range(n)]


async def test_traffic_follows_latency_and_shifts_when_it_changes(start_sim: StartSim) -> None:
    clock = VirtualClock()
    fast = await start_sim(latency_ms=2.0, clock=clock, sleep=clock.sleep)
    slow = await start_sim(latency_ms=120.0, clock=clock, sleep=clock.sleep)
    data = config(model("chat", deployment("fast", fast.base_url), deployment("slow", slow.base_url),
                        strategy="latency", strategy_options=OPTIONS))
    async with routed(data, clock=clock, seed=3) as gw:
        warm_up = await _sends(gw, 10)
        assert {"fast", "slow"} <= set(warm_up)  # both were tried before being judged
        assert sum(served(fast, slow)) == 10

        assert (await _sends(gw, 30)).count("fast") >= 28
        answer = await gw.chat("chat")
        assert answer.deployment == "fast"
        assert re.fullmatch(r"latency: fast \(p2c: ewma [0-9.e-]+s vs ewma 0\.1\d*s\)", answer.route), answer.route

        # The fast one slows down: its next answer sets a new peak, and the traffic moves.
        fast.update(latency_ms=400.0)
        before = served(fast, slow)
        shifted = await _sends(gw, 12)
        assert shifted.count("fast") <= 2
        assert shifted[-8:] == ["slow"] * 8
        assert [n - m for n, m in zip(served(fast, slow), before, strict=True)] == [shifted.count("fast"),
                                                                                   shifted.count("slow")]

        # It recovers. Its old peak decays with time (tau 10 s): a minute later it is probed, and
        # its fast answers keep it ahead.
        fast.update(latency_ms=2.0)
        clock.advance(60.0)
        recovered = await _sends(gw, 20)
        assert recovered.count("fast") >= 17
        assert recovered[-10:] == ["fast"] * 10
