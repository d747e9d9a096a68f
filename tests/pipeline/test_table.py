"""Immutable, versioned routing tables: runtime changes build the next table, calls keep the one they started on.

``set_weight`` and ``update_strategy_options`` make version + 1 and leave the old table as it was; a Call built
before a change still routes on its own table; live state (breakers, counters, budgets) is the same object in both
tables; an invalid change raises and keeps the current table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from resilience_support import FakeTransport, fake_deployment, fake_model, status

from stellwerk import ConfigError, ModelNotFoundError, Operation, Router

USER = [{"role": "user", "content": "Hello there"}]
MakeRouter = Callable[..., Router]

AB: dict[str, Any] = {"variants": [{"name": "control", "deployments": ["a"], "percent": 95},
                                   {"name": "canary", "deployments": ["b"], "percent": 5}]}


def weighted(weight_b: float = 0.0) -> dict[str, Any]:
    """Smooth weighted round robin with a drained ``b``: ``a`` answers until ``b`` gets a weight."""
    return fake_model("chat", "a", fake_deployment("b", weight=weight_b), strategy="weighted", retries=0)


async def test_set_weight_builds_the_next_table_and_leaves_the_old_one(fake_router: MakeRouter) -> None:
    router = fake_router(weighted())
    old = router.table
    assert old.version == 1
    router.configuration.set_weight("b", 5)
    new = router.table
    assert new is not old and new.version == 2
    assert old.deployments["b"].weight == 0.0 and old.config.models[0].deployments[1].weight == 0.0
    assert new.deployments["b"].weight == 5.0 and new.config.models[0].deployments[1].weight == 5.0
    assert old.deployments["b"] is not new.deployments["b"]
    with pytest.raises(TypeError):
        old.models["other"] = old.models["chat"]  # type: ignore[index]


async def test_update_strategy_options_builds_the_next_table(fake_router: MakeRouter) -> None:
    router = fake_router(fake_model("chat", "a", "b", strategy="ab", strategy_options=AB))
    old = router.table
    router.configuration.update_strategy_options("chat", {"variants": [{**AB["variants"][0], "percent": 50},
                                                         {**AB["variants"][1], "percent": 50}]})
    new = router.table
    assert new.version == old.version + 1
    assert [v["percent"] for v in old.config.models[0].strategy_options["variants"]] == [95, 5]
    assert [v["percent"] for v in new.config.models[0].strategy_options["variants"]] == [50, 50]
    assert old.models["chat"].planner.strategy is not new.models["chat"].planner.strategy


async def test_a_call_keeps_the_table_it_was_built_on(fake_router: MakeRouter, transport: FakeTransport) -> None:
    router = fake_router(weighted())
    old = router.table
    call = router.call(Operation.CHAT, {"model": "chat", "messages": USER})
    router.configuration.set_weight("b", 5)
    assert call.table is old and router.table is not old
    before = await router.handle(call)  # on the old table b is drained
    after = await router.chat(model="chat", messages=USER)  # on the new one b has 5 of 6
    assert (before.deployment, after.deployment) == ("a", "b")  # type: ignore[union-attr]
    assert transport.order() == ["a", "b"]


async def test_live_state_carries_over_to_the_next_table(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", status(503))
    router = fake_router(fake_model("chat", "a", "b", retries=0))
    await router.chat(model="chat", messages=USER)
    old = router.table
    router.configuration.set_weight("b", 2)
    new = router.table
    for dep in ("a", "b"):
        assert new.deployments[dep].state is old.deployments[dep].state
        assert new.deployments[dep].breaker is old.deployments[dep].breaker
    assert new.models["chat"].group.budget is old.models["chat"].group.budget
    assert new.deployments["a"].breaker.policy.consecutive == 1 and new.deployments["a"].health.failures == 1
    assert new.deployments["b"].health.successes == 1


async def test_an_invalid_change_raises_and_keeps_the_current_table(fake_router: MakeRouter) -> None:
    router = fake_router(fake_model("chat", "a", "b", strategy="ab", strategy_options=AB),
                         fake_model("plain", "c"))
    current = router.table
    with pytest.raises(KeyError):
        router.configuration.set_weight("nope", 1)
    with pytest.raises(ValueError):
        router.configuration.set_weight("a", -1)
    with pytest.raises(ConfigError, match="percentages add up to 90"):
        router.configuration.update_strategy_options("chat", {"variants": [{**AB["variants"][0], "percent": 85},
                                                             {**AB["variants"][1], "percent": 5}]})
    with pytest.raises(ConfigError, match="unknown deployment 'zz'"):
        router.configuration.update_strategy_options("chat", {"variants": [{"name": "x", "deployments": ["zz"], "percent": 100}]})
    with pytest.raises(ValueError, match="cannot change its options"):
        router.configuration.update_strategy_options("plain", {})
    with pytest.raises(ModelNotFoundError):
        router.configuration.update_strategy_options("missing", {})
    assert router.table is current and current.version == 1
    assert [v["percent"] for v in current.config.models[0].strategy_options["variants"]] == [95, 5]


async def test_strategies_of_replaced_options_are_forgotten(fake_router: MakeRouter) -> None:
    # A canary ramped step by step must not leave one strategy object per step behind.
    router = fake_router(fake_model("chat", "a", "b", strategy="ab", strategy_options=AB))
    for percent in range(10, 100, 10):
        router.configuration.update_strategy_options("chat", {"variants": [{**AB["variants"][0], "percent": 100 - percent},
                                                             {**AB["variants"][1], "percent": percent}]})
    assert len(router._live._strategies) == 1
    assert next(iter(router._live._strategies.values())) is router.table.models["chat"].planner.strategy
