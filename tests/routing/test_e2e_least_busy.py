"""``least-busy`` through the gateway: under concurrency a slow deployment, holding its requests longer, gets fewer."""

from __future__ import annotations

import asyncio
import re

from test_e2e_support import Answer, Routed, StartSim, routed, served

from support import config, deployment, model


async def test_slow_deployment_gets_fewer_requests_under_concurrency(start_sim: StartSim) -> None:
    slow, fast = await start_sim(latency_ms=300.0), await start_sim()
    # The slow one is listed first, so every tie goes to it: it still ends up with few requests.
    data = config(model("chat", deployment("slow", slow.base_url), deployment("fast", fast.base_url),
                        strategy="least-busy"))
    answers: list[Answer] = []
    todo = iter(range(40))

    async def worker(gw: Routed) -> None:  # four clients share 40 requests
        for _ in todo:
            answers.append(await gw.chat("chat"))

    async with routed(data) as gw:
        await asyncio.gather(*(worker(gw) for _ in range(4)))
    n_slow, n_fast = served(slow, fast)
    assert n_slow + n_fast == 40
    assert n_slow <= 10 < 30 <= n_fast  # round robin would give 20/20
    assert all(a.status == 200 for a in answers)
    for a in answers:
        assert re.fullmatch(rf"least-busy: {a.deployment} \(\d+ in flight vs \d+\)", a.route), a.route


async def test_sequential_requests_tie_on_the_listed_first(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    async with routed(config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url),
                                   strategy="least-busy"))) as gw:
        routes = {(await gw.chat("chat")).route for _ in range(5)}
    assert routes == {"least-busy: a (0 in flight vs 0)"}
    assert served(a, b) == [5, 0]
