"""The official ``openai`` SDK, unchanged, against a running gateway in front of upstreams on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import USER, CaptureUpstream, RawConnection, config, deployment, http_request, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]

PRICE = {"input_per_mtok": 2.5, "output_per_mtok": 10.0}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                   "required": ["city", "days"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                       "required": ["zone"]}}}


async def sim_gateway(start_sim: StartSim, start_gateway: StartGateway, make_client: MakeClient,
                      **profile: Any) -> tuple[SimProvider, Gateway, openai.AsyncOpenAI]:
    sim = await start_sim(**profile)
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url, price=PRICE))))
    return sim, gateway, make_client(gateway)


async def capture_gateway(start_upstream: StartUpstream, start_gateway: StartGateway, make_client: MakeClient,
                          **dep: Any) -> tuple[CaptureUpstream, Gateway, openai.AsyncOpenAI]:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url, **dep))))
    return up, gateway, make_client(gateway)


# -- chat --------------------------------------------------------------------------------------------------------------
async def test_chat_completion_headers_and_cost(start_sim: StartSim, start_gateway: StartGateway,
                                                make_client: MakeClient) -> None:
    sim, _, client = await sim_gateway(start_sim, start_gateway, make_client, output_tokens=7)
    raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
    completion = raw.parse()
    assert raw.status_code == 200
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert len((completion.choices[0].message.content or "").split()) == 7
    assert completion.choices[0].finish_reason == "stop"
    assert raw.headers["x-stellwerk-deployment"] == "a"
    assert raw.headers["x-stellwerk-attempts"] == "1"
    assert re.fullmatch(r"[0-9a-f]{24}", raw.headers["x-request-id"])
    usage = completion.usage
    assert usage is not None and usage.completion_tokens == 7
    expected = (usage.prompt_tokens * PRICE["input_per_mtok"] + usage.completion_tokens * PRICE["output_per_mtok"]) / 1e6
    assert raw.headers["x-stellwerk-cost"] == f"{expected:.8f}"
    assert sim.stats.ok == 1


async def test_request_id_is_echoed_or_replaced(start_sim: StartSim, start_gateway: StartGateway,
                                                make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=USER, extra_headers={"x-request-id": "trace-42.a:b"})
    assert raw.headers["x-request-id"] == "trace-42.a:b"
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=USER, extra_headers={"x-request-id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{24}", raw.headers["x-request-id"])


async def test_stream_without_include_usage(start_sim: StartSim, start_gateway: StartGateway,
                                            make_client: MakeClient) -> None:
    sim, _, client = await sim_gateway(start_sim, start_gateway, make_client, output_tokens=9)
    raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
    assert raw.headers["x-stellwerk-deployment"] == "a"
    assert raw.headers["x-stellwerk-attempts"] == "1"
    assert raw.headers["content-type"].startswith("text/event-stream")
    chunks = [chunk async for chunk in raw.parse()]
    assert all(chunk.usage is None for chunk in chunks)  # the usage chunk the gateway asked for is not forwarded
    assert all(chunk.choices for chunk in chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert len(text.split()) == 9
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert sim.stats.streams == 1


async def test_stream_with_include_usage(start_sim: StartSim, start_gateway: StartGateway,
                                         make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client, output_tokens=4)
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None and last.usage.completion_tokens == 4
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_gateway_always_asks_upstream_for_stream_usage(start_upstream: StartUpstream,
                                                             start_gateway: StartGateway,
                                                             make_client: MakeClient) -> None:
    up, gateway, client = await capture_gateway(start_upstream, start_gateway, make_client)
    for options in (None, {"include_usage": False}, {"include_usage": True}):
        extra: dict[str, Any] = {} if options is None else {"stream_options": options}
        chunks = [c async for c in await client.chat.completions.create(model="chat", messages=USER, stream=True,
                                                                        **extra)]
        assert up.last.json["stream"] is True
        assert up.last.json["stream_options"] == {"include_usage": True}
        got_usage = [c for c in chunks if c.usage is not None]
        assert len(got_usage) == (1 if options == {"include_usage": True} else 0)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from upstream"
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["deployments"]["a"]["completion_tokens"] == 9  # exact usage for all three streams


async def test_stream_usage_off_for_deployments_that_reject_it(start_upstream: StartUpstream,
                                                               start_gateway: StartGateway,
                                                               make_client: MakeClient) -> None:
    up, _, client = await capture_gateway(start_upstream, start_gateway, make_client, stream_usage=False)
    chunks = [c async for c in await client.chat.completions.create(model="chat", messages=USER, stream=True)]
    assert "stream_options" not in up.last.json
    assert chunks[-1].choices[0].finish_reason == "stop"


# -- tools, response formats, images -----------------------------------------------------------------------------------
async def test_tool_calls(start_sim: StartSim, start_gateway: StartGateway, make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client)
    completion = await client.chat.completions.create(model="chat", messages=USER, tools=[WEATHER],  # type: ignore[list-item]
                                                      tool_choice="auto")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert set(json.loads(call.function.arguments)) == {"city", "days"}


async def test_tool_calls_streamed(start_sim: StartSim, start_gateway: StartGateway, make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client)
    stream = await client.chat.completions.create(model="chat", messages=USER, tools=[WEATHER],  # type: ignore[list-item]
                                                  stream=True)
    name, arguments, finish = "", "", None
    async for chunk in stream:
        delta = chunk.choices[0].delta
        for call in delta.tool_calls or []:
            assert call.index == 0
            if call.function and call.function.name:
                name += call.function.name
            if call.function and call.function.arguments:
                arguments += call.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather"
    assert set(json.loads(arguments)) == {"city", "days"}
    assert finish == "tool_calls"


async def test_tool_choice_naming_a_function(start_sim: StartSim, start_gateway: StartGateway,
                                             make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client)
    completion = await client.chat.completions.create(
        model="chat", messages=USER, tools=[WEATHER, CLOCK],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_time"  # type: ignore[union-attr]


async def test_tool_results_conversation_passes_through(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                        make_client: MakeClient) -> None:
    up, _, client = await capture_gateway(start_upstream, start_gateway, make_client)
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Bern?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                              "arguments": '{"city":"Bern","days":1}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    await client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                         tool_choice="none", parallel_tool_calls=False)
    sent = up.last.json
    assert sent["messages"] == messages
    assert sent["tools"] == [WEATHER]
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("none", False)


async def test_response_format_json_object_and_schema(start_sim: StartSim, start_gateway: StartGateway,
                                                      make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client)
    completion = await client.chat.completions.create(model="chat", messages=USER,
                                                      response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    schema = {"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "number"}},
              "required": ["answer", "score"], "additionalProperties": False}
    completion = await client.chat.completions.create(
        model="chat", messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "grade", "schema": schema, "strict": True}})
    data = json.loads(completion.choices[0].message.content or "")
    assert set(data) == {"answer", "score"}
    assert isinstance(data["answer"], str) and isinstance(data["score"], int | float)


async def test_images_in_content_parts_pass_through(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                    make_client: MakeClient) -> None:
    up, _, client = await capture_gateway(start_upstream, start_gateway, make_client)
    content: list[Any] = [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.png", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf"}},
    ]
    completion = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == "Hello from upstream"
    assert up.last.json["messages"] == [{"role": "user", "content": content}]


async def test_sampling_and_unknown_params_reach_the_upstream_unchanged(
    start_upstream: StartUpstream, start_gateway: StartGateway, make_client: MakeClient
) -> None:
    up, _, client = await capture_gateway(start_upstream, start_gateway, make_client)
    params: dict[str, Any] = {
        "temperature": 0.7, "top_p": 0.9, "max_tokens": 33, "max_completion_tokens": 40, "seed": 42,
        "stop": ["END", "\n\n"], "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"50256": -100},
        "user": "user-1", "n": 2, "logprobs": True, "top_logprobs": 2, "metadata": {"k": "v"}, "store": False,
        "service_tier": "auto", "reasoning_effort": "low",
    }
    extra = {"vendor_knob": {"deep": [1, 2.5, None, "x"]}, "top_k": 5}
    await client.chat.completions.create(model="chat", messages=USER, extra_body=extra, **params)
    assert up.last.json == {"model": "up-a", "messages": USER, **params, **extra}
    assert up.last.path == "/v1/chat/completions"
    assert "authorization" not in up.last.headers  # no key configured: the client's key is not forwarded
    await client.chat.completions.create(model="chat", messages=USER, stream=True, **params)
    assert up.last.json == {"model": "up-a", "messages": USER, **params, "stream": True,
                            "stream_options": {"include_usage": True}}


async def test_upstream_credentials_and_extra_headers(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                      make_client: MakeClient) -> None:
    up, _, client = await capture_gateway(start_upstream, start_gateway, make_client, api_key="sk-up-key-000000000000",
                                          headers={"OpenAI-Organization": "org-9"})
    await client.chat.completions.create(model="chat", messages=USER)
    headers = up.last.headers
    assert headers["authorization"] == "Bearer sk-up-key-000000000000"  # the deployment's key, not the client's
    assert headers["openai-organization"] == "org-9"
    assert "client-key" not in orjson.dumps(headers).decode()


async def test_azure_deployment(start_upstream: StartUpstream, start_gateway: StartGateway,
                                make_client: MakeClient) -> None:
    up = await start_upstream()
    azure = {"id": "az", "provider": "azure", "model": "my-gpt4o", "api_base": up.base_url.removesuffix("/v1"),
             "api_key": "azure-key-123456", "api_version": "2024-06-01"}
    gateway = await start_gateway(config(model("chat", azure)))
    client = make_client(gateway)
    completion = await client.chat.completions.create(model="chat", messages=USER, temperature=0)
    assert completion.choices[0].message.content == "Hello from upstream"
    sent = up.last
    assert sent.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert sent.query == "api-version=2024-06-01"
    assert sent.headers["api-key"] == "azure-key-123456"
    assert "authorization" not in sent.headers
    assert sent.json == {"messages": USER, "temperature": 0}


# -- models, embeddings, health ----------------------------------------------------------------------------------------
async def test_models_list(start_sim: StartSim, start_gateway: StartGateway, make_client: MakeClient) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url)),
                                         model("embed", deployment("e", sim.base_url))))
    client = make_client(gateway)
    page = await client.models.list()
    assert [m.id for m in page.data] == ["chat", "embed"]
    assert all(m.object == "model" and m.owned_by == "stellwerk" for m in page.data)
    assert sim.stats.requests == 0  # answered from the config


async def test_embeddings_float_and_base64(start_sim: StartSim, start_gateway: StartGateway,
                                           make_client: MakeClient) -> None:
    sim = await start_sim(embedding_dimensions=16)
    gateway = await start_gateway(config(model("embed", deployment("e", sim.base_url, price=PRICE))))
    client = make_client(gateway)
    raw = await client.embeddings.with_raw_response.create(model="embed", input=["alpha", "beta"],
                                                           encoding_format="float")
    floats = raw.parse()
    assert raw.headers["x-stellwerk-deployment"] == "e" and raw.headers["x-stellwerk-attempts"] == "1"
    assert [len(d.embedding) for d in floats.data] == [16, 16]
    expected = floats.usage.prompt_tokens * PRICE["input_per_mtok"] / 1e6
    assert raw.headers["x-stellwerk-cost"] == f"{expected:.8f}"
    # The SDK's default asks for base64 and decodes it: same vectors (to float32 precision).
    decoded = await client.embeddings.create(model="embed", input=["alpha", "beta"])
    for a, b in zip(floats.data, decoded.data, strict=True):
        assert b.embedding == pytest.approx(a.embedding, rel=1e-6, abs=1e-7)
    small = await client.embeddings.create(model="embed", input="gamma", dimensions=4)
    assert len(small.data[0].embedding) == 4


async def test_health_and_admin_stats(start_sim: StartSim, start_gateway: StartGateway,
                                      make_client: MakeClient) -> None:
    _, gateway, client = await sim_gateway(start_sim, start_gateway, make_client)
    health = await request(gateway.port, "GET", "/healthz")
    assert (health.status, health.json) == (200, {"status": "ok"})
    await client.chat.completions.create(model="chat", messages=USER)
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["requests"] == 1 and stats["errors"] == 0
    assert stats["deployments"]["a"]["requests"] == 1
    assert stats["cost_usd"] > 0


async def test_paths_without_v1_prefix_and_with_trailing_slash(start_sim: StartSim, start_gateway: StartGateway,
                                                               make_client: MakeClient) -> None:
    _, gateway, _ = await sim_gateway(start_sim, start_gateway, make_client)
    body = {"model": "chat", "messages": USER}
    assert (await request(gateway.port, "POST", "/chat/completions", body)).status == 200
    assert (await request(gateway.port, "POST", "/v1/chat/completions/", body)).status == 200
    assert (await request(gateway.port, "GET", "/models")).json["data"][0]["id"] == "chat"


# -- HTTP details a client may use -------------------------------------------------------------------------------------------
async def test_pipelined_and_expect_continue_requests(start_sim: StartSim, start_gateway: StartGateway,
                                                      make_client: MakeClient) -> None:
    _, gateway, _ = await sim_gateway(start_sim, start_gateway, make_client)
    body = orjson.dumps({"model": "chat", "messages": USER})
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("POST", "/v1/chat/completions", body, {"x-request-id": "one"})
                        + http_request("GET", "/v1/models", headers={"x-request-id": "two"})
                        + http_request("POST", "/v1/embeddings", b'{"model": "chat", "input": "x"}',
                                       {"x-request-id": "three"}))
        answers = [await conn.read_response() for _ in range(3)]
        assert [a.headers["x-request-id"] for a in answers] == ["one", "two", "three"]
        assert [a.status for a in answers] == [200, 200, 200]
        await conn.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
        assert (await conn.read_response()).status == 100
        await conn.send(body)
        assert (await conn.read_response()).json["object"] == "chat.completion"


async def test_large_answers_pass_intact(start_sim: StartSim, start_gateway: StartGateway,
                                         make_client: MakeClient) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_client, output_tokens=8_000, words_per_chunk=3)
    completion = await client.chat.completions.create(model="chat", messages=USER)
    assert len((completion.choices[0].message.content or "").split()) == 8_000
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert len(text.split()) == 8_000
