"""The library path: a Router with a keyring enforces keys, limits and budgets in process, in virtual time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "resilience"))

from resilience_support import VirtualTime

from stellwerk import Router
from stellwerk.errors import AuthenticationError, PermissionDeniedError, QuotaExceededError, RateLimitError
from stellwerk.keys import Keyring
from stellwerk.keys.input import KeyInput, TeamInput
from stellwerk.pipeline import Principal
from stellwerk.state.records import Budget
from stellwerk.telemetry import RequestFinished

USER = [{"role": "user", "content": "Hello there"}]


async def router_for(start_sim: Any, keyring: Keyring, clock: VirtualTime) -> Router:
    sim = await start_sim()
    data = {"models": [{"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "m",
                                                          "api_base": sim.base_url,
                                                          "price": {"input_per_mtok": 1000, "output_per_mtok": 1000}}]},
                       {"name": "other", "deployments": [{"id": "b", "provider": "openai", "model": "m",
                                                           "api_base": sim.base_url}]}]}
    return Router.from_dict(data, keyring=keyring, clock=clock)


async def test_rpm_window_moves_with_the_routers_clock(start_sim: Any) -> None:
    clock = VirtualTime(1000.0)
    keyring = Keyring(wall=lambda: 1.7e9)
    _record, secret = await keyring.create_key(KeyInput(name="lib", rpm=2))
    async with await router_for(start_sim, keyring, clock) as router:
        for _ in range(2):
            await router.chat(model="chat", messages=USER, api_key=secret)
        with pytest.raises(RateLimitError) as caught:
            await router.chat(model="chat", messages=USER, api_key=secret)
        assert ("retry-after", "60") in caught.value.headers
        clock.advance(30)
        with pytest.raises(RateLimitError) as again:
            await router.chat(model="chat", messages=USER, api_key=secret)
        assert ("retry-after", "30") in again.value.headers
        clock.advance(30)
        result = await router.chat(model="chat", messages=USER, api_key=secret)
        assert ("x-ratelimit-remaining-requests", "1") in result.headers


async def test_a_principal_passed_in_is_limited_too(start_sim: Any) -> None:
    keyring = Keyring()
    await keyring.create_team(TeamInput(name="ops", max_parallel=5, budget=Budget(usd=0.001)))
    record, _ = await keyring.create_key(KeyInput(name="svc", team="ops", models=["chat"]))
    seen: list[RequestFinished] = []
    async with await router_for(start_sim, keyring, VirtualTime()) as router:
        router.events.subscribe(seen.append, RequestFinished)  # type: ignore[arg-type]
        principal = Principal(key_id=record.id, team="ops")
        result = await router.chat(model="chat", messages=USER, principal=principal)
        assert result.cost > 0.001  # one request spends the whole team budget (and may: B plus one request)
        with pytest.raises(QuotaExceededError):
            await router.chat(model="chat", messages=USER, principal=principal)
        with pytest.raises(PermissionDeniedError):
            await router.chat(model="other", messages=USER, principal=principal)
        with pytest.raises(AuthenticationError):
            await router.chat(model="chat", messages=USER, api_key="sk-stw-nope")
    assert [(r.key_id, r.team, r.status) for r in seen] == [
        (record.id, "ops", 200), (record.id, "ops", 429), (record.id, "ops", 403), (None, None, 401)]


async def test_the_window_of_tokens_and_the_budget_period(start_sim: Any) -> None:
    clock = VirtualTime(1000.0)
    wall = VirtualTime(1.7e9 - 1.7e9 % 3600)  # on the hour
    keyring = Keyring(wall=wall)
    _, secret = await keyring.create_key(KeyInput(name="p", budget=Budget(usd=0.0001, period="1h")))
    async with await router_for(start_sim, keyring, clock) as router:
        await router.chat(model="chat", messages=USER, api_key=secret)
        with pytest.raises(QuotaExceededError) as caught:
            await router.chat(model="chat", messages=USER, api_key=secret)
        assert ("retry-after", "3600") in caught.value.headers
        wall.advance(3600)  # the next hour: a new budget period
        await router.chat(model="chat", messages=USER, api_key=secret)
