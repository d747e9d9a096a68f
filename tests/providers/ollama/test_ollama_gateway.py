"""The official ``openai`` SDK through the gateway to a fake Ollama that replays the wire fixtures."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from provider_support import PNG_URI, ReplayUpstream, Reply, chunks_of, json_response, load_json
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse

FIXTURES = Path(__file__).parent / "fixtures"
RESPONSES = {c["name"]: c["ollama"] for c in load_json(FIXTURES / "responses.json")}
WEATHER = {"type": "function", "function": {"name": "get_current_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}, "format": {"type": "string"}}}}}

StartReplay = Callable[[Reply], Awaitable[ReplayUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


async def fake_ollama(req: Request) -> Response | StreamingResponse:
    body = orjson.loads(req.body) if req.body else {}
    if req.path == "/api/chat":
        if body.get("model") != "llama3.2":
            return json_response({"error": f"model \"{body.get('model')}\" not found, try pulling it first"}, 404)
        if body.get("stream", True):
            name = "stream_tools" if body.get("tools") else "stream_text"
            return StreamingResponse(chunks_of((FIXTURES / f"{name}.ndjson").read_bytes()),
                                     content_type="application/x-ndjson")
        return json_response(RESPONSES["tool_calls" if body.get("tools") else "text"])
    if req.path == "/api/embed":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return json_response({"model": body["model"], "embeddings": [[0.1 * i, 0.2] for i in range(len(inputs))],
                              "prompt_eval_count": 3 * len(inputs)})
    return json_response({"error": "not found"}, 404)


async def gateway_for(start_replay: StartReplay, start_gateway: StartGateway,
                      model: str = "llama3.2") -> tuple[ReplayUpstream, Gateway]:
    upstream = await start_replay(fake_ollama)
    gateway = await start_gateway({"models": [
        {"name": "chat", "deployments": [{"id": "ollama-a", "provider": "ollama", "model": model,
                                          "api_base": upstream.url()}]},
        {"name": "embed", "deployments": [{"id": "ollama-e", "provider": "ollama", "model": "all-minilm",
                                           "api_base": upstream.url()}]},
    ]})
    return upstream, gateway


async def test_chat_with_image(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    raw = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=[
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": PNG_URI}}]}], seed=4)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert completion.usage is not None and completion.usage.prompt_tokens == 26
    assert raw.headers["x-stellwerk-deployment"] == "ollama-a"
    sent = upstream.last.json
    assert sent["stream"] is False and sent["options"] == {"seed": 4}
    assert sent["messages"][0]["images"] == [PNG_URI.partition(",")[2]]


async def test_stream_with_usage(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    stream = await make_client(gateway).chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Why blue?"}], stream=True,
        stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The sky is blue."
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (26, 282)
    assert upstream.last.json["stream"] is True


async def test_tools_and_streamed_tools(start_replay: StartReplay, start_gateway: StartGateway,
                                        make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    client = make_client(gateway)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER])
    calls = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls" and len(calls) == 2
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": "22 C"} for c in calls]
    await client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER])
    sent = upstream.last.json["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_current_weather",
                                                    "arguments": {"format": "celsius", "location": "Paris, FR"}}
    assert [m["tool_name"] for m in sent[2:]] == ["get_current_weather", "get_current_weather"]
    stream = await client.chat.completions.create(model="chat", messages=messages[:1], tools=[WEATHER], stream=True)
    names = [call.function.name async for chunk in stream for choice in chunk.choices
             for call in choice.delta.tool_calls or () if call.function]
    assert names == ["get_weather", "get_time"]


async def test_embeddings(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    result = await make_client(gateway).embeddings.create(model="embed", input=["a", "b", "c"])
    # The SDK asks for base64, which carries float32 (as OpenAI's does): equal to float32 precision.
    assert [d.embedding[1] for d in result.data] == pytest.approx([0.2, 0.2, 0.2], rel=1e-6)
    assert result.usage.prompt_tokens == 9
    assert upstream.last.json == {"model": "all-minilm", "input": ["a", "b", "c"]}  # the SDK's base64 request is answered


async def test_missing_model_moves_on(start_replay: StartReplay, start_gateway: StartGateway,
                                      make_client: MakeClient) -> None:
    _, gateway = await gateway_for(start_replay, start_gateway, model="llama9")
    with pytest.raises(openai.APIStatusError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "not found, try pulling it first" in json.dumps(info.value.body)
