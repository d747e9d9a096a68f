"""Keys, limits and budgets end to end, through the official openai and anthropic SDKs.

Every error of the contract: wrong, revoked and expired keys (401 invalid_api_key), a model not allowed
(403 model_not_allowed), rpm, tpm and parallel limits (429 rate_limit_exceeded with retry-after and
x-ratelimit-*), a budget spent by a concurrent burst (429 insufficient_quota, no overshoot), spend per key
equal to the sum of x-stellwerk-cost, and the admin API refused without the master key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest
from keys_support import MASTER, admin, create_key

from support import GUARD, USER, Response, completion_body

ANTHROPIC_USER = [{"role": "user", "content": "Hello there"}]


def oai(gateway: Any, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=GUARD)


def claude(gateway: Any, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key=key, max_retries=0,
                                    timeout=GUARD)


async def test_a_valid_key_answers_with_rate_limit_headers(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, rpm=10, tpm=100_000)
    assert key["key"].startswith("sk-stw-") and key["id"].startswith("key_")
    async with oai(gateway, key["key"]) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, max_tokens=16)
    assert raw.headers["x-ratelimit-limit-requests"] == "10"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 100_000
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    async with claude(gateway, key["key"]) as client:
        message = await client.messages.with_raw_response.create(model="chat", max_tokens=16,
                                                                   messages=ANTHROPIC_USER)  # type: ignore[arg-type]
    assert message.headers["x-ratelimit-remaining-requests"] == "8"
    async with oai(gateway, key["key"]) as client:  # streams carry them too
        stream = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
        assert stream.headers["x-ratelimit-limit-requests"] == "10"
        async for _ in stream.parse():
            pass
    accounts = gateway.router.accounts
    assert accounts is not None
    account = accounts.account("key:" + key["id"])
    assert account.inflight == 0 and account.reserved_tokens == 0  # the stream was reconciled when it ended
    assert accounts.used("key:" + key["id"])[1] > 0


async def test_every_front_door_answers_with_the_rate_limit_headers(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, rpm=20, tpm=100_000)
    async with oai(gateway, key["key"]) as client:
        calls = [
            client.completions.with_raw_response.create(model="chat", prompt="Say hi", max_tokens=8),
            client.responses.with_raw_response.create(model="chat", input="Say hi", max_output_tokens=16),
        ]
        remaining = []
        for call in calls:
            raw = await call
            assert raw.headers["x-ratelimit-limit-requests"] == "20"
            assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
            assert raw.headers["x-ratelimit-reset-tokens"].endswith("s")
            remaining.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        stream = await client.responses.with_raw_response.create(model="chat", input="Say hi", stream=True)
        assert stream.headers["x-ratelimit-limit-requests"] == "20"
        remaining.append(int(stream.headers["x-ratelimit-remaining-requests"]))
        async for _ in stream.parse():
            pass
    anthropic_client = claude(gateway, key["key"])
    async with anthropic_client, anthropic_client.messages.with_streaming_response.create(
            model="chat", max_tokens=16, messages=ANTHROPIC_USER, stream=True) as events:  # type: ignore[arg-type]
        assert events.headers["x-ratelimit-limit-tokens"] == "100000"  # an Anthropic stream
        remaining.append(int(events.headers["x-ratelimit-remaining-requests"]))
        async for _ in events.iter_lines():
            pass
    assert remaining == [19, 18, 17, 16]


async def test_a_client_leaving_a_stream_releases_its_reservation(governed: Any, start_sim: Any) -> None:
    sim = await start_sim(tokens_per_second=50, output_tokens=500)
    gateway = await governed(api_base=sim.base_url)
    key = await create_key(gateway, max_parallel=1, tpm=100_000)
    account = gateway.router.accounts.account("key:" + key["id"])  # type: ignore[union-attr]
    async with admin(gateway, key["key"]) as client:
        body = {"model": "chat", "messages": USER, "stream": True, "max_tokens": 600}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            async for _ in response.aiter_bytes():
                break  # the first chunk, then the client goes away
    for _ in range(int(GUARD / 0.01)):  # waiting for the gateway to notice, not timing it
        if account.inflight == 0:
            break
        await asyncio.sleep(0.01)
    assert (account.inflight, account.reserved_tokens, account.reserved_cost) == (0, 0, 0.0)


@pytest.mark.parametrize("how", ["missing", "unknown", "revoked", "expired"])
async def test_invalid_keys_get_401_in_each_apis_shape(governed: Any, how: str) -> None:
    gateway = await governed()
    secret = "sk-stw-not-a-key"
    if how == "revoked":
        key = await create_key(gateway)
        secret = key["key"]
        async with admin(gateway) as client:
            assert (await client.delete(f"/admin/keys/{key['id']}")).status_code == 200
    elif how == "expired":
        secret = (await create_key(gateway, expires_at="2020-01-01T00:00:00Z"))["key"]
    elif how == "missing":
        secret = ""
    async with oai(gateway, secret or "x") as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            await client.chat.completions.create(model="chat", messages=USER,
                                                 extra_headers={"authorization": ""} if how == "missing" else None)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    async with claude(gateway, secret or "x") as client:
        with pytest.raises(anthropic.AuthenticationError) as denied:
            await client.messages.create(model="chat", max_tokens=16, messages=ANTHROPIC_USER,  # type: ignore[arg-type]
                                         extra_headers={"x-api-key": ""} if how == "missing" else None)
    body = denied.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    async with oai(gateway, secret or "x") as client:  # routes outside the pipeline are keyed too
        with pytest.raises(openai.AuthenticationError):
            await client.models.list(extra_headers={"authorization": ""} if how == "missing" else None)


async def test_azure_style_api_key_header(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway)
    async with admin(gateway, None) as client:
        ok = await client.post("/v1/chat/completions", json={"model": "chat", "messages": USER},
                               headers={"api-key": key["key"]})
    assert ok.status_code == 200, ok.text


async def test_a_model_not_allowed_is_403(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, models=["ch*"])
    async with oai(gateway, key["key"]) as client:
        await client.chat.completions.create(model="chat", messages=USER)
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.chat.completions.create(model="other", messages=USER)
    assert caught.value.code == "model_not_allowed"
    async with claude(gateway, key["key"]) as client:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            await client.messages.create(model="other", max_tokens=16, messages=ANTHROPIC_USER)  # type: ignore[arg-type]
    assert "model_not_allowed" in str(denied.value)


async def test_a_teams_models_apply_to_its_keys(governed: Any) -> None:
    gateway = await governed()
    async with admin(gateway) as client:
        assert (await client.post("/admin/teams", json={"name": "blue", "models": ["other"]})).status_code == 201
    key = await create_key(gateway, team="blue")
    async with oai(gateway, key["key"]) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="chat", messages=USER)


async def test_rpm_limit_429_with_headers(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, rpm=2)
    async with oai(gateway, key["key"]) as client:
        for _ in range(2):
            await client.chat.completions.create(model="chat", messages=USER)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="chat", messages=USER)
    error = caught.value
    assert error.code == "rate_limit_exceeded"
    headers = error.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-reset-requests" in headers
    async with claude(gateway, key["key"]) as client:
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="chat", max_tokens=16, messages=ANTHROPIC_USER)  # type: ignore[arg-type]
    assert limited.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert isinstance(limited.value.body, dict) and limited.value.body["error"]["type"] == "rate_limit_error"


async def test_team_rpm_counts_every_key_of_the_team(governed: Any) -> None:
    gateway = await governed()
    async with admin(gateway) as client:
        await client.post("/admin/teams", json={"name": "red", "rpm": 2})
    first, second = await create_key(gateway, team="red"), await create_key(gateway, team="red", rpm=100)
    async with oai(gateway, first["key"]) as one, oai(gateway, second["key"]) as two:
        await one.chat.completions.create(model="chat", messages=USER)
        raw = await two.chat.completions.with_raw_response.create(model="chat", messages=USER)
        assert raw.headers["x-ratelimit-limit-requests"] == "2"  # the tightest: the team's
        with pytest.raises(openai.RateLimitError):
            await two.chat.completions.create(model="chat", messages=USER)


async def test_tpm_reserves_at_admission_and_reconciles(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, tpm=300)
    async with oai(gateway, key["key"]) as client:
        # 200 reserved (max_tokens) + the prompt: admitted (nothing used yet), the real usage is far less
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, max_tokens=200)
        used = raw.parse().usage
        assert used is not None and used.total_tokens < 100
        assert int(raw.headers["x-ratelimit-remaining-tokens"]) <= 300 - 200  # while it ran, 200+ were reserved
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, max_tokens=200)
        # reconciled: only the real tokens of the first answer count now
        assert 300 - used.total_tokens - 220 <= int(raw.headers["x-ratelimit-remaining-tokens"])


async def test_a_concurrent_burst_never_overshoots_tpm(governed: Any, start_upstream: Any) -> None:
    release = asyncio.Event()

    async def held(request: Any) -> Response:
        await release.wait()
        return Response(200, completion_body(prompt_tokens=10, completion_tokens=5))

    upstream = await start_upstream(held)
    gateway = await governed(api_base=upstream.base_url)
    key = await create_key(gateway, tpm=3000)
    async with oai(gateway, key["key"]) as client:
        # each reserves its prompt + 1000: three fit below 3000 while none has completed, the rest are refused
        tasks = [asyncio.create_task(client.chat.completions.create(model="chat", messages=USER, max_tokens=1000))
                 for _ in range(10)]
        for _ in range(8):  # the seven refusals come back while three requests are held upstream
            if sum(t.done() for t in tasks) >= 7:
                break
            await asyncio.wait([t for t in tasks if not t.done()], timeout=GUARD, return_when=asyncio.FIRST_COMPLETED)
        async with claude(gateway, key["key"]) as anth:  # the Anthropic front door counts against the same tpm
            with pytest.raises(anthropic.RateLimitError) as refused:
                await anth.messages.create(model="chat", max_tokens=1000, messages=ANTHROPIC_USER)  # type: ignore[arg-type]
        assert refused.value.response.headers["x-ratelimit-remaining-tokens"] == "0"
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    limited = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(limited) == 7
    assert all(r.code == "rate_limit_exceeded" and "tokens per minute" in r.message for r in limited)
    assert all(r.response.headers["x-ratelimit-limit-tokens"] == "3000" for r in limited)
    accounts = gateway.router.accounts
    assert accounts is not None
    account = accounts.account("key:" + key["id"])
    assert account.reserved_tokens == 0 and accounts.used("key:" + key["id"])[1] == 3 * 15  # reconciled with the real usage


async def test_max_parallel_limit_and_release(governed: Any, start_upstream: Any) -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(request: Any) -> Response:
        arrived.set()
        await release.wait()
        return Response(200, completion_body())

    upstream = await start_upstream(slow)
    gateway = await governed(api_base=upstream.base_url)
    key = await create_key(gateway, max_parallel=1)
    async with oai(gateway, key["key"]) as client:
        first = asyncio.create_task(client.chat.completions.create(model="chat", messages=USER))
        await asyncio.wait_for(arrived.wait(), GUARD)
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="chat", messages=USER)
        assert caught.value.code == "rate_limit_exceeded"
        assert "in flight" in caught.value.message
        async with claude(gateway, key["key"]) as anth:
            with pytest.raises(anthropic.RateLimitError):
                await anth.messages.create(model="chat", max_tokens=16, messages=ANTHROPIC_USER)  # type: ignore[arg-type]
        release.set()
        await first
        await client.chat.completions.create(model="chat", messages=USER)  # released on completion


async def test_a_failure_releases_the_reservation(governed: Any, start_upstream: Any) -> None:
    upstream = await start_upstream(lambda request: _error())
    gateway = await governed(api_base=upstream.base_url)
    key = await create_key(gateway, max_parallel=1, tpm=5000)
    async with oai(gateway, key["key"]) as client:
        for _ in range(3):
            with pytest.raises(openai.APIStatusError):
                await client.chat.completions.create(model="chat", messages=USER, max_tokens=1000)
    accounts = gateway.router.accounts
    assert accounts is not None
    account = accounts.account("key:" + key["id"])
    assert (account.inflight, account.reserved_tokens, account.reserved_cost) == (0, 0, 0.0)


async def _error() -> Response:
    return Response(400, b'{"error": {"message": "bad", "type": "invalid_request_error"}}')


@pytest.mark.parametrize("api", ["openai", "anthropic"])
async def test_a_concurrent_burst_never_overshoots_the_budget(governed: Any, api: str) -> None:
    gateway = await governed()
    budget = 0.5
    key = await create_key(gateway, budget={"usd": budget, "period": "1d"})
    costs: list[float] = []
    quota: list[Exception] = []

    async def one(client: Any) -> None:
        try:
            if api == "openai":
                raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER,
                                                                             max_tokens=32)
            else:
                raw = await client.messages.with_raw_response.create(model="chat", max_tokens=32,
                                                                     messages=ANTHROPIC_USER)
            costs.append(float(raw.headers["x-stellwerk-cost"]))
        except (openai.RateLimitError, anthropic.RateLimitError) as err:
            quota.append(err)

    client = oai(gateway, key["key"]) if api == "openai" else claude(gateway, key["key"])
    async with client:
        await asyncio.gather(*[one(client) for _ in range(50)])
    assert costs and quota
    assert sum(costs) <= budget + max(costs)
    for err in quota:
        body: Any = err.body  # type: ignore[attr-defined]
        error = body if api == "openai" else body["error"]  # the OpenAI SDK unwraps "error"
        assert error["type"] == "insufficient_quota"
    async with admin(gateway) as client:
        view = (await client.get(f"/admin/keys/{key['id']}")).json()
        spend = (await client.get("/admin/spend", params={"group_by": "key"})).json()
    assert view["spend"] == pytest.approx(sum(costs), abs=1e-6)
    assert view["requests"] == len(costs)
    row = next(r for r in spend["rows"] if r["key"] == key["id"])
    assert row["cost"] == pytest.approx(sum(costs), abs=len(costs) * 1e-8)
    assert row["name"] == "k"
    assert spend["group_by"] == "key"


async def test_spend_per_key_is_the_sum_of_x_stellwerk_cost(governed: Any) -> None:
    gateway = await governed()
    one, two = await create_key(gateway, name="one"), await create_key(gateway, name="two")
    costs = {one["id"]: 0.0, two["id"]: 0.0}
    for key in (one, two, one):
        async with oai(gateway, key["key"]) as client:
            raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
            costs[key["id"]] += float(raw.headers["x-stellwerk-cost"])
    async with claude(gateway, two["key"]) as anth:
        raw = await anth.messages.with_raw_response.create(model="chat", max_tokens=16,
                                                           messages=ANTHROPIC_USER)  # type: ignore[arg-type]
        costs[two["id"]] += float(raw.headers["x-stellwerk-cost"])
    async with admin(gateway) as client:
        rows = (await client.get("/admin/spend?group_by=key")).json()["rows"]
        by_model = (await client.get("/admin/spend?group_by=model")).json()["rows"]
        listed = (await client.get("/admin/keys")).json()["data"]
    got = {r["key"]: r for r in rows}
    for key_id, cost in costs.items():
        assert got[key_id]["cost"] == pytest.approx(cost, abs=4e-8)
    assert got[one["id"]]["requests"] == 2 and got[two["id"]]["requests"] == 2
    assert by_model[0]["model"] == "chat" and by_model[0]["requests"] == 4
    assert {k["id"]: k["spend"] for k in listed} == pytest.approx(costs, abs=4e-8)
    assert all(isinstance(k["spend"], float) and "key" not in k for k in listed)


async def test_admin_api_needs_the_master_key_or_an_admin_key(governed: Any) -> None:
    gateway = await governed()
    plain = await create_key(gateway)
    boss = await create_key(gateway, scopes=["admin"])
    for path in ("/admin/keys", "/admin/teams", "/admin/spend", "/admin/stats", "/admin/health",
                 "/admin/experiments", "/admin/route?model=chat", f"/admin/keys/{plain['id']}"):
        async with admin(gateway, None) as client:
            assert (await client.get(path)).status_code == 401, path
        async with admin(gateway, "sk-stw-wrong") as client:
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "invalid_api_key"
        async with admin(gateway, plain["key"]) as client:
            assert (await client.get(path)).status_code == 403, path
        async with admin(gateway, boss["key"]) as client:
            assert (await client.get(path)).status_code == 200, path
    async with admin(gateway, plain["key"]) as client:
        assert (await client.put("/admin/deployments/a/weight", json={"weight": 2})).status_code == 403
        assert (await client.post("/admin/keys", json={"name": "x"})).status_code == 403
    async with admin(gateway, None) as client:
        assert (await client.get("/healthz")).status_code == 200
    async with oai(gateway, MASTER) as sdk:  # the master key may also call models
        await sdk.chat.completions.create(model="chat", messages=USER)


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": "x", "rpm": 0}, "rpm"),
    ({"name": "x", "rpm": "ten"}, "rpm"),
    ({"name": "x", "budget": {"usd": 1, "period": "2d"}}, "budget.period"),
    ({"name": "x", "budget": {"period": "1d"}}, "budget.usd"),
    ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "x", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ({"name": "x", "scopes": ["root"]}, "scopes[0]"),
    ({"name": "x", "team": "nobody"}, "team"),
    ({"name": "x", "colour": "red"}, "colour"),
    ({"name": "x", "models": "chat"}, "models"),
])
async def test_bad_admin_input_is_a_400_naming_the_field(governed: Any, body: dict[str, Any], field: str) -> None:
    gateway = await governed()
    async with admin(gateway) as client:
        response = await client.post("/admin/keys", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field, error
    assert field in error["message"]


async def test_patch_changes_a_key_and_unknown_ids_are_404(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, rpm=1)
    async with admin(gateway) as client:
        patched = await client.patch(f"/admin/keys/{key['id']}", json={"rpm": None, "tags": ["ci"]})
        assert patched.status_code == 200 and patched.json()["rpm"] is None and patched.json()["tags"] == ["ci"]
        assert (await client.patch(f"/admin/keys/{key['id']}", json={"tpm": -1})).json()["error"]["param"] == "tpm"
        assert (await client.get("/admin/keys/key_nope")).status_code == 404
        assert (await client.delete("/admin/keys/key_nope")).status_code == 404
        assert (await client.get("/admin/spend?group_by=user")).json()["error"]["param"] == "group_by"
        assert (await client.get("/admin/spend?since=yesterday")).json()["error"]["param"] == "since"
        assert (await client.post("/admin/teams", json={"name": "t", "rpm": 0})).json()["error"]["param"] == "rpm"
        assert (await client.post("/admin/teams", json={"name": "t"})).status_code == 201
        assert (await client.post("/admin/teams", json={"name": "t"})).json()["error"]["param"] == "name"
        teams = (await client.get("/admin/teams")).json()["data"]
    assert [t["name"] for t in teams] == ["t"]
    async with oai(gateway, key["key"]) as sdk:
        for _ in range(3):  # the rpm of 1 is gone
            await sdk.chat.completions.create(model="chat", messages=USER)


async def test_keys_declared_in_the_config(governed: Any) -> None:
    gateway = await governed(keys=[{"name": "ci", "key": "sk-declared-0123456789", "rpm": 1, "models": ["chat"]}])
    async with oai(gateway, "sk-declared-0123456789") as client:
        await client.chat.completions.create(model="chat", messages=USER)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="chat", messages=USER)
    async with admin(gateway) as client:
        listed = (await client.get("/admin/keys")).json()["data"]
        assert [(k["id"], k["source"]) for k in listed] == [("cfg_ci", "config")]
        refused = await client.delete("/admin/keys/cfg_ci")
    assert refused.status_code == 400 and "config file" in refused.json()["error"]["message"]


async def test_keys_survive_a_restart(governed: Any) -> None:
    gateway = await governed()
    key = await create_key(gateway, budget={"usd": 100, "period": "total"})
    async with oai(gateway, key["key"]) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
    cost = float(raw.headers["x-stellwerk-cost"])
    await gateway.close(grace=1.0)
    again = await governed()
    async with oai(again, key["key"]) as client:
        await client.chat.completions.create(model="chat", messages=USER)
    async with admin(again) as client:
        view = (await client.get(f"/admin/keys/{key['id']}")).json()
    assert view["requests"] == 2 and view["spend"] == pytest.approx(2 * cost, abs=1e-7)


async def test_401_comes_before_any_check_of_the_request(governed: Any) -> None:
    gateway = await governed()
    async with admin(gateway, "sk-stw-wrong") as client:
        for path, body in (("/v1/chat/completions", {"model": "secret-model"}), ("/v1/embeddings", {}),
                           ("/v1/messages", {"model": "x"})):
            response = await client.post(path, json=body)
            assert response.status_code == 401, (path, response.text)
            assert "secret-model" not in response.text and "Available models" not in response.text
        assert (await client.post("/v1/messages/count_tokens", json={})).json()["type"] == "error"
        for path in ("/v1/models", "/v1/not-yet-a-route", "/models"):  # any route but /healthz needs a key
            assert (await client.get(path)).status_code == 401, path


async def test_stored_responses_belong_to_their_team_or_key(governed: Any) -> None:
    gateway = await governed()
    async with admin(gateway) as client:
        assert (await client.post("/admin/teams", json={"name": "blue"})).status_code == 201
    alone, other = await create_key(gateway), await create_key(gateway)
    blue_1, blue_2 = await create_key(gateway, team="blue"), await create_key(gateway, team="blue")

    async def first(key: dict[str, Any]) -> str:
        async with oai(gateway, key["key"]) as client:
            return (await client.responses.create(model="chat", input="My name is Ada.")).id

    async def follow(key: dict[str, Any], previous: str) -> Any:
        async with oai(gateway, key["key"]) as client:
            return await client.responses.create(model="chat", input="And?", previous_response_id=previous)

    mine = await first(alone)
    assert (await follow(alone, mine)).previous_response_id == mine
    with pytest.raises(openai.BadRequestError) as foreign:  # another key: answered as an unknown id
        await follow(other, mine)
    assert foreign.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert "no stored response" in foreign.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        await follow(blue_1, mine)
    shared = await first(blue_1)
    assert (await follow(blue_2, shared)).previous_response_id == shared  # a team shares, as a project does
    with pytest.raises(openai.BadRequestError):
        await follow(alone, shared)
