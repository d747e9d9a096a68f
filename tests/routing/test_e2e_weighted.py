"""``weighted`` and ``weighted-random`` through the gateway: exact smooth-WRR splits, weights changed at run time."""

from __future__ import annotations

from test_e2e_support import StartSim, routed, served

from support import config, deployment, model


async def test_weights_3_to_1_split_exactly_and_change_at_run_time(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(model("chat", deployment("a", a.base_url, weight=3), deployment("b", b.base_url, weight=1),
                        strategy="weighted"))
    async with routed(data) as gw:
        raw = await gw.sdk.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "Hi"}])
        assert raw.headers["x-stellwerk-route"] == "weighted: a (swrr: weight 3 of 4)"
        picks = ["a"] + [(await gw.chat("chat")).deployment for _ in range(39)]
        assert served(a, b) == [30, 10]
        assert picks[:4] == ["a", "a", "b", "a"]  # smooth: spread out, never a run of three a's then b
        assert all(picks[i:i + 4].count("b") == 1 for i in range(0, 40, 4))

        # Now b takes three shares and a one, from the next request on, without a restart.
        for dep, weight in (("a", 1), ("b", 3)):
            answer = await gw.admin("PUT", f"/admin/deployments/{dep}/weight", {"weight": weight})
            assert answer.status == 200, answer.body
        for _ in range(40):
            await gw.chat("chat")
        assert served(a, b) == [30 + 10, 10 + 30]
        assert (await gw.chat("chat")).route.startswith("weighted: b (swrr: weight 3 of 4)")

        # Weight 0 drains a deployment.
        assert (await gw.admin("PUT", "/admin/deployments/a/weight", {"weight": 0})).status == 200
        for _ in range(8):
            await gw.chat("chat")
        assert served(a, b) == [40, 41 + 8]


async def test_weight_updates_are_validated(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with routed(config(model("chat", deployment("a", sim.base_url), strategy="weighted"))) as gw:
        missing = await gw.admin("PUT", "/admin/deployments/nope/weight", {"weight": 2})
        assert missing.status == 404
        assert "'nope'" in missing.json["error"]["message"]
        for body in ({"weight": -1}, {"weight": 1e9}, {"weight": "2"}, {"weight": True}, {"wieght": 2}):
            answer = await gw.admin("PUT", "/admin/deployments/a/weight", body)
            assert answer.status == 400, body
            assert "weight" in answer.json["error"]["message"]


async def test_weighted_random_is_roughly_proportional(start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(model("chat", deployment("a", a.base_url, weight=3), deployment("b", b.base_url, weight=1),
                        strategy="weighted-random"))
    async with routed(data, seed=7) as gw:
        answers = [await gw.chat("chat") for _ in range(300)]
    n_a, n_b = served(a, b)
    assert n_a + n_b == 300
    assert 0.68 <= n_a / 300 <= 0.82  # expected 0.75; the seed makes the draw repeatable
    assert all(x.route.startswith(f"weighted-random: {x.deployment} (weight ") for x in answers)
