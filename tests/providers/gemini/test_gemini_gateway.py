"""The official ``openai`` SDK through the gateway to a fake Gemini that replays the wire fixtures."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from provider_support import ReplayUpstream, Reply, chunks_of, json_response, load_json
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "AIzaSyD-gateway-test-key-0123456789abcdef"
RESPONSES = {c["name"]: c["gemini"] for c in load_json(FIXTURES / "responses.json")}
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 4.0}
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}

StartReplay = Callable[[Reply], Awaitable[ReplayUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


async def fake_gemini(req: Request) -> Response | StreamingResponse:
    """Answers as Gemini would, from the fixtures: function calls when the request declares tools."""
    if req.headers.get("x-goog-api-key") != KEY:
        return json_response({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.",
                                        "status": "INVALID_ARGUMENT"}}, 400)
    body = orjson.loads(req.body)
    if req.path.endswith(":streamGenerateContent") and req.query == "alt=sse":
        name = "stream_tools" if "tools" in body else "stream_text"
        return StreamingResponse(chunks_of((FIXTURES / f"{name}.sse").read_bytes()), content_type="text/event-stream")
    if req.path.endswith(":generateContent"):
        return json_response(RESPONSES["function_calls" if "tools" in body else "text"])
    if req.path.endswith(":batchEmbedContents"):
        return json_response({"embeddings": [{"values": [float(i), 0.5]} for i, _ in enumerate(body["requests"])]})
    if req.path.endswith(":embedContent"):
        return json_response({"embedding": {"values": [0.25, -0.5]}})
    return json_response({"error": {"code": 404, "message": f"{req.path} not found", "status": "NOT_FOUND"}}, 404)


async def gateway_for(start_replay: StartReplay, start_gateway: StartGateway) -> tuple[ReplayUpstream, Gateway]:
    upstream = await start_replay(fake_gemini)
    gateway = await start_gateway({"models": [
        {"name": "chat", "deployments": [{"id": "gemini-a", "provider": "gemini", "model": "gemini-2.0-flash",
                                          "api_base": upstream.url("/v1beta"), "api_key": "${GEMINI_KEY}",
                                          "price": PRICE}]},
        {"name": "embed", "deployments": [{"id": "gemini-e", "provider": "gemini", "model": "text-embedding-004",
                                           "api_base": upstream.url("/v1beta"), "api_key": "${GEMINI_KEY}"}]},
    ]}, env={"GEMINI_KEY": KEY})
    return upstream, gateway


async def test_chat(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    client = make_client(gateway)
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why blue?"}],
        temperature=0.1, max_tokens=50)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Rayleigh scattering."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 4)
    assert raw.headers["x-stellwerk-deployment"] == "gemini-a"
    assert raw.headers["x-stellwerk-cost"] == f"{(12 * 1.0 + 4 * 4.0) / 1e6:.8f}"
    sent = upstream.last
    assert sent.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent.json["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.json["generationConfig"] == {"temperature": 0.1, "maxOutputTokens": 50}


async def test_stream_with_usage(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    _, gateway = await gateway_for(start_replay, start_gateway)
    stream = await make_client(gateway).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Why blue?"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Rayleigh scattering."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 16


async def test_tools_round_trip(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    client = make_client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    first = await client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER], tool_choice="auto")
    calls = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert len({c.id for c in calls}) == 2
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"sunny in {json.loads(c.function.arguments)['city']}"}
                 for c in calls]
    await client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER])
    contents = upstream.last.json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert [p["functionResponse"] for p in contents[2]["parts"]] == [
        {"name": "get_weather", "response": {"output": "sunny in Paris"}},
        {"name": "get_weather", "response": {"output": "sunny in Rome"}}]


async def test_streamed_tool_calls(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    _, gateway = await gateway_for(start_replay, start_gateway)
    stream = await make_client(gateway).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["name"] += (call.function.name or "") if call.function else ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})]
    assert "__ts__" in calls[0]["id"]  # the thought signature travels in the id


async def test_embeddings(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    client = make_client(gateway)
    many = await client.embeddings.create(model="embed", input=["a", "b"])
    assert [d.embedding for d in many.data] == [[0.0, 0.5], [1.0, 0.5]]
    assert upstream.last.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    one = await client.embeddings.create(model="embed", input="a")
    assert one.data[0].embedding == [0.25, -0.5]
    assert upstream.last.path.endswith(":embedContent")


async def test_wrong_key_moves_on_and_never_leaks(start_replay: StartReplay, start_gateway: StartGateway,
                                                  make_client: MakeClient) -> None:
    upstream = await start_replay(fake_gemini)
    gateway = await start_gateway({"models": [{"name": "chat", "deployments": [
        {"id": "g", "provider": "gemini", "model": "m", "api_base": upstream.url("/v1beta"),
         "api_key": "AIzaSyD-wrong-key-0123456789abcdefghij"}]}]})
    with pytest.raises(openai.APIStatusError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "API key not valid" in str(info.value) and "wrong-key" not in str(info.value)
