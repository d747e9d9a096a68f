"""The sim over HTTP, driven by the official ``openai`` SDK (and httpx for the raw wire)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from stellwerk.sim import Outage, Profile, SimProvider, reply_words
from support import GUARD

MESSAGES: Any = [{"role": "user", "content": "Say something about trains."}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


@pytest.fixture
async def sim() -> AsyncIterator[SimProvider]:
    provider = SimProvider(Profile(output_tokens=8, seed=3))
    await provider.start("127.0.0.1", 0)
    try:
        yield provider
    finally:
        await provider.close()


@pytest.fixture
async def client(sim: SimProvider) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=GUARD) as c:
        yield c


@pytest.fixture
async def raw(sim: SimProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim.port}", timeout=GUARD) as c:
        yield c


async def test_non_stream_reply_is_predictable(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="any-model", messages=MESSAGES)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "any-model"
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == " ".join(reply_words(8, 3))
    assert choice.finish_reason == "stop"
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (7, 8, 15)
    assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"


async def test_max_tokens_cuts_with_finish_reason_length(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=3)
    assert r.choices[0].message.content == " ".join(reply_words(3, 3))
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 3


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " ".join(reply_words(8, 3))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert len({c.id for c in chunks}) == 1


async def test_stream_is_paced_by_tokens_per_second() -> None:
    """The sim's waits in virtual time (the client's clock would measure the load of the machine as well)."""
    now = 0.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds
        await asyncio.sleep(0)

    sim = SimProvider(Profile(latency_ms=50, tokens_per_second=200, output_tokens=20, seed=3), clock=lambda: now,
                      sleep=sleep)
    await sim.start("127.0.0.1", 0)
    try:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=GUARD) as client:
            stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    finally:
        await sim.close()
    assert text == " ".join(reply_words(20, 3))
    assert waits == [pytest.approx(0.05)] + [pytest.approx(1 / 200)] * 19  # TTFT, then the next 19 words at 200/s


async def test_tool_call_non_stream(client: openai.AsyncOpenAI) -> None:
    r = await client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"sim","days":1}'


async def test_tool_call_stream_and_tool_choice(client: openai.AsyncOpenAI) -> None:
    other: Any = {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}
    stream = await client.chat.completions.create(
        model="m",
        messages=MESSAGES,
        tools=[other, WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    chunks = [c async for c in stream]
    first = chunks[0].choices[0].delta.tool_calls
    assert first is not None and first[0].function is not None
    assert first[0].id is not None and first[0].function.name == "get_weather" and first[0].function.arguments == ""
    arguments = "".join(
        tc.function.arguments or ""
        for c in chunks[1:]
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
        if tc.function is not None
    )
    assert arguments == '{"city":"sim","days":1}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    r = await client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none")
    assert r.choices[0].message.tool_calls is None and r.choices[0].message.content


async def test_json_modes(client: openai.AsyncOpenAI) -> None:
    import json

    r = await client.chat.completions.create(model="m", messages=MESSAGES, response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
    schema: dict[str, Any] = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    r = await client.chat.completions.create(
        model="m",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": "sim"}


async def test_embeddings_float_and_base64(client: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    r = await client.embeddings.create(model="emb", input=["alpha", "beta"])  # the SDK asks for base64
    assert [d.index for d in r.data] == [0, 1] and len(r.data[0].embedding) == 64
    assert r.data[0].embedding != r.data[1].embedding
    assert r.usage.prompt_tokens == 3  # ceil(5 / 4) + ceil(4 / 4)
    floats = await client.embeddings.create(model="emb", input="alpha", encoding_format="float", dimensions=8)
    assert len(floats.data[0].embedding) == 8
    resp = await raw.post("/v1/embeddings", json={"model": "emb", "input": "alpha"})
    body = resp.json()
    assert body["object"] == "list" and body["model"] == "emb"
    assert body["data"][0]["embedding"] == pytest.approx(r.data[0].embedding)


async def test_models(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [m.id for m in models.data] == ["sim-model"]
    sim.update(models=["a", "b"], accept_any_model=False)
    assert (await client.models.retrieve("b")).id == "b"
    with pytest.raises(openai.NotFoundError) as info:
        await client.chat.completions.create(model="c", messages=MESSAGES)
    assert info.value.code == "model_not_found"


async def test_bad_request_is_openai_shaped(client: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=[])
    assert info.value.code == "empty_array" and info.value.param == "messages"
    resp = await raw.post("/v1/chat/completions", content=b"{oops")
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    resp = await raw.get("/v1/nowhere")
    assert resp.status_code == 404 and resp.json()["error"]["message"] == "Invalid URL (GET /v1/nowhere)"


async def test_api_key_required() -> None:
    sim = SimProvider(api_key="sk-correct-horse-battery")
    await sim.start("127.0.0.1", 0)
    try:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-wrong-key-0123456789", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError) as info:
                await c.chat.completions.create(model="m", messages=MESSAGES)
        assert info.value.code == "invalid_api_key"
        assert "sk-wrong-key-0123456789" not in str(info.value.body)
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-correct-horse-battery", max_retries=0) as c:
            assert (await c.chat.completions.create(model="m", messages=MESSAGES)).choices
    finally:
        await sim.close()


async def test_rate_limit_with_retry_after(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(rate_limit_rate=1.0, retry_after_s=3)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.code == "rate_limit_exceeded"
    headers = info.value.response.headers
    assert headers["retry-after"] == "3"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert sim.stats.rate_limited == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(sim: SimProvider, client: openai.AsyncOpenAI, status: int) -> None:
    sim.update(error_rate=1.0, error_statuses=[status])
    with pytest.raises(openai.InternalServerError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == status
    assert set(info.value.response.json()["error"]) == {"message", "type", "param", "code"}


async def test_context_length_and_content_policy(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(context_window=5, content_policy_trigger="Trains")
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.code == "context_length_exceeded"
    sim.update(context_window=0)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.code == "content_policy_violation"


async def test_drop_mid_stream(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(drop_mid_stream_rate=1.0, output_tokens=40)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
    assert not any(c.choices and c.choices[0].finish_reason for c in received)


async def test_drop_before_answer(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(drop_mid_stream_rate=1.0)
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.APIConnectionError):
        await client.embeddings.create(model="e", input="x")
    assert sim.stats.drop == 2


async def test_malformed(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(malformed_rate=1.0)
    with pytest.raises(ValueError):  # json.JSONDecodeError from the SDK
        await client.chat.completions.create(model="m", messages=MESSAGES)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(ValueError):
        async for _ in stream:
            pass
    assert sim.stats.malformed == 2


async def test_hang_until_client_times_out(sim: SimProvider) -> None:
    sim.update(hang_rate=1.0)
    # The SDK's own Timeout (its HTTP library is httpx2 in newer releases): only the wait for the answer is short,
    # so the request surely arrives.
    timeout = openai.Timeout(GUARD, read=0.2)
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=timeout) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(model="m", messages=MESSAGES)
    assert sim.stats.hang == 1


async def test_close_cuts_hanging_requests_at_once(sim: SimProvider, raw: httpx.AsyncClient) -> None:
    sim.update(hang_rate=1.0)
    pending = asyncio.ensure_future(raw.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES}))
    async with asyncio.timeout(GUARD):
        while sim.stats.hang == 0:
            await asyncio.sleep(0.01)  # until the sim holds the request
    started = time.perf_counter()
    await sim.close(grace=GUARD * 2)
    assert time.perf_counter() - started < GUARD  # at once; waiting for the grace would take twice as long
    with pytest.raises(httpx.HTTPError):
        await pending


async def test_outage_window_refuses(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(outages=[{"start": 0, "duration": 60, "mode": "refuse"}])
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    sim.update(outages=[{"start": 0, "duration": 60, "status": 503}])
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert sim.stats.refused == 1 and sim.stats.error == 1


async def test_control_endpoints(sim: SimProvider, client: openai.AsyncOpenAI, raw: httpx.AsyncClient) -> None:
    await client.chat.completions.create(model="m", messages=MESSAGES)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    stats = (await raw.get("/_sim/stats")).json()
    assert stats["requests"] == 2 and stats["ok"] == 2 and stats["streams"] == 1
    resp = await raw.post("/_sim/profile", json={"error_rate": 1.0, "error_statuses": [503]})
    assert resp.status_code == 200 and resp.json()["error_rate"] == 1.0
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    resp = await raw.post("/_sim/profile", json={"error_rat": 1.0})
    assert resp.status_code == 400 and "error_rat" in resp.json()["error"]["message"]
    assert (await raw.get("/_sim/profile")).json()["error_statuses"] == [503]
    resp = await raw.post("/_sim/reset")
    assert resp.json()["requests"] == 0
    assert sim.profile.error_rate == 0.0
    assert (await client.chat.completions.create(model="m", messages=MESSAGES)).choices
    assert sim.stats.ok == 1


async def test_keep_alive_survives_many_requests(raw: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    results = await asyncio.gather(*(raw.post("/v1/chat/completions", json=body) for _ in range(50)))
    assert all(r.status_code == 200 and r.text.endswith("data: [DONE]\n\n") for r in results)


async def test_injected_rng_and_clock_are_used() -> None:
    import random

    class Rigged(random.Random):
        def random(self) -> float:
            return 0.0  # always the first failure band: rate limit

    now = [0.0]
    sim = SimProvider(
        Profile(rate_limit_rate=0.01, outages=(Outage(start=100, duration=10),)), rng=Rigged(), clock=lambda: now[0]
    )
    await sim.start("127.0.0.1", 0)
    try:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=GUARD) as c:
            with pytest.raises(openai.RateLimitError):
                await c.chat.completions.create(model="m", messages=MESSAGES)
            now[0] = 105.0
            with pytest.raises(openai.InternalServerError):
                await c.chat.completions.create(model="m", messages=MESSAGES)
        assert sim.stats.rate_limited == 1 and sim.stats.error == 1
    finally:
        await sim.close()


async def test_stream_error_event_mid_stream(sim: SimProvider, client: openai.AsyncOpenAI) -> None:
    sim.update(stream_error_rate=1.0, error_statuses=[503], output_tokens=40)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError, match="overloaded"):
        async for chunk in stream:
            received.append(chunk)
    assert received and not any(c.choices and c.choices[0].finish_reason for c in received)
    with pytest.raises(openai.InternalServerError):  # not streamed: the status itself
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert sim.stats.stream_error == 2
