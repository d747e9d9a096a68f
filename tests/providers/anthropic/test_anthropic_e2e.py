"""The ``anthropic`` provider end to end: official SDKs → gateway → a fake Anthropic upstream on loopback that
replays the golden fixtures (what the API reference documents), including failover on its errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.sim import SimProvider
from support import USER, CaptureUpstream, config, deployment, model

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-ant-api03-e2e-0123456789abcdef"

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def error_case(name: str) -> dict[str, Any]:
    return next(c for c in fixture("errors.json")["cases"] if c["name"] == name)


async def _events(data: bytes) -> AsyncIterator[bytes]:
    for event in data.split(b"\n\n"):
        if event.strip():
            yield event + b"\n\n"


async def replay(req: Request) -> Response | StreamingResponse:
    """A fake Messages API: the golden answer for the request's kind (text or tools, complete or streamed)."""
    if req.path != "/v1/messages":
        return Response(404, orjson.dumps({"type": "error", "error": {"type": "not_found_error", "message": req.path}}))
    body = orjson.loads(req.body)
    kind = "tool_use" if body.get("tools") else "text"
    if body.get("stream"):
        return StreamingResponse(_events((FIXTURES / f"stream_{kind}.sse").read_bytes()))
    return Response(200, orjson.dumps(fixture(f"response_{kind}.json")["anthropic"]))


def failing(name: str) -> Callable[[Request], Awaitable[Response]]:
    case = error_case(name)

    async def respond(req: Request) -> Response:
        return Response(case["status"], orjson.dumps(case["body"]), list(case["headers"].items()))

    return respond


async def overloaded_stream(req: Request) -> StreamingResponse:
    return StreamingResponse(_events((FIXTURES / "stream_overloaded.sse").read_bytes()))


def root(up: CaptureUpstream) -> str:
    return f"http://127.0.0.1:{up.server.port}"


def claude(id: str, up: CaptureUpstream, **fields: Any) -> dict[str, Any]:
    return {"id": id, "provider": "anthropic", "model": "claude-sonnet-4-5", "api_base": root(up), "api_key": KEY,
            **fields}


async def one_claude(start_upstream: StartUpstream, start_gateway: StartGateway,
                     **fields: Any) -> tuple[CaptureUpstream, Gateway]:
    up = await start_upstream(replay)
    gateway = await start_gateway(config(model("chat", claude("claude", up, **fields), retries=0)))
    return up, gateway


# -- openai SDK → gateway → anthropic --------------------------------------------------------------------------------
async def test_openai_sdk_text(start_upstream: StartUpstream, start_gateway: StartGateway,
                               make_client: MakeClient) -> None:
    up, gateway = await one_claude(start_upstream, start_gateway, default_max_tokens=512)
    raw = await make_client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "system", "content": "Be brief."}, *USER], temperature=0.2)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hi! My name is Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 2095
    assert raw.headers["x-stellwerk-deployment"] == "claude"
    sent = up.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    assert sent.json == {"model": "claude-sonnet-4-5", "max_tokens": 512, "system": "Be brief.",
                         "messages": [{"role": "user", "content": "Hello there"}], "temperature": 0.2}


async def test_openai_sdk_stream_with_usage(start_upstream: StartUpstream, start_gateway: StartGateway,
                                            make_client: MakeClient) -> None:
    up, gateway = await one_claude(start_upstream, start_gateway)
    stream = await make_client(gateway).chat.completions.create(
        model="chat", messages=USER, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (40, 15)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 10
    assert up.last.json["stream"] is True and up.last.headers["accept"] == "text/event-stream"


async def test_openai_sdk_stream_usage_only_when_asked(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                       make_client: MakeClient) -> None:
    _, gateway = await one_claude(start_upstream, start_gateway)
    stream = await make_client(gateway).chat.completions.create(model="chat", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


async def test_openai_sdk_tools(start_upstream: StartUpstream, start_gateway: StartGateway,
                                make_client: MakeClient) -> None:
    up, gateway = await one_claude(start_upstream, start_gateway)
    client = make_client(gateway)
    completion = await client.chat.completions.create(model="chat", messages=USER, tools=[WEATHER],
                                                      tool_choice="required")
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.id == "toolu_01A09q90qw90lq917835lq9"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "San Francisco, CA", "unit": "celsius"}
    assert up.last.json["tools"] == [{"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}]
    assert up.last.json["tool_choice"] == {"type": "any"}

    stream = await client.chat.completions.create(model="chat", messages=USER, tools=[WEATHER], stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or ():
            entry = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += delta.id or ""
            entry["name"] += (delta.function.name or "") if delta.function else ""
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert calls == {0: {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
                         "arguments": '{"location": "San Francisco, CA"}'},
                     1: {"id": "toolu_02", "name": "get_time", "arguments": "{}"}}


# -- failover on Anthropic's errors ----------------------------------------------------------------------------------
async def test_overloaded_fails_over(start_upstream: StartUpstream, start_gateway: StartGateway,
                                     make_client: MakeClient) -> None:
    busy = await start_upstream(failing("overloaded"))
    good = await start_upstream(replay)
    gateway = await start_gateway(config(model("chat", claude("busy", busy), claude("good", good), retries=0)))
    raw = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=USER)
    assert raw.parse().choices[0].message.content == "Hi! My name is Claude."
    assert raw.headers["x-stellwerk-deployment"] == "good"
    assert busy.count >= 1 and good.count == 1


async def test_stream_error_event_before_content_fails_over(start_upstream: StartUpstream,
                                                            start_gateway: StartGateway,
                                                            make_client: MakeClient) -> None:
    """An ``overloaded_error`` event right after ``message_start`` still fails over: no chunk was sent yet."""
    busy = await start_upstream(overloaded_stream)
    good = await start_upstream(replay)
    gateway = await start_gateway(config(model("chat", claude("busy", busy), claude("good", good), retries=0)))
    stream = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=USER,
                                                                                  stream=True)
    assert stream.headers["x-stellwerk-deployment"] == "good"
    text = "".join([c.choices[0].delta.content or "" async for c in stream.parse() if c.choices])
    assert text == "Hello!"


async def test_long_rate_limit_moves_on_to_openai(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                  make_client: MakeClient) -> None:
    limited = await start_upstream(failing("rate_limit_long"))
    openai_up = await start_upstream()
    gateway = await start_gateway(config(model("chat", claude("limited", limited), deployment("gpt", openai_up.base_url),
                                               retries=2)))
    raw = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=USER)
    assert raw.headers["x-stellwerk-deployment"] == "gpt"
    assert limited.count == 1  # a 60 s wait is not retried here


async def test_client_error_is_returned_not_failed_over(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                        make_client: MakeClient) -> None:
    bad = await start_upstream(failing("invalid_request"))
    other = await start_upstream(replay)
    gateway = await start_gateway(config(model("chat", claude("bad", bad), claude("other", other))))
    with pytest.raises(openai.BadRequestError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=USER)
    assert "roles must alternate" in str(info.value)
    assert other.count == 0


async def test_prompt_too_long_everywhere_is_400(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                 make_client: MakeClient) -> None:
    a = await start_upstream(failing("prompt_too_long"))
    b = await start_upstream(failing("context_limit"))
    gateway = await start_gateway(config(model("chat", claude("a", a), claude("b", b))))
    with pytest.raises(openai.BadRequestError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=USER)
    assert "too long" in str(info.value)
    assert a.count == 1 and b.count == 1


async def test_embeddings_are_not_offered(start_upstream: StartUpstream, start_gateway: StartGateway,
                                          make_client: MakeClient) -> None:
    up, gateway = await one_claude(start_upstream, start_gateway)
    with pytest.raises(openai.APIStatusError, match="does not offer embeddings"):
        await make_client(gateway).embeddings.create(model="chat", input="x")
    assert up.count == 0


# -- anthropic SDK → gateway (front door) → anthropic provider ---------------------------------------------------------
async def test_anthropic_sdk_through_both_translations(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                       make_anthropic: Callable[[Gateway], anthropic.AsyncAnthropic]
                                                       ) -> None:
    up, gateway = await one_claude(start_upstream, start_gateway)
    client = make_anthropic(gateway)
    message = await client.messages.create(model="chat", max_tokens=100, system="Be brief.",
                                           messages=[{"role": "user", "content": "Hello"}])
    assert message.content[0].type == "text" and message.content[0].text == "Hi! My name is Claude."
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 2095
    assert up.last.json == {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be brief.",
                            "messages": [{"role": "user", "content": "Hello"}]}

    async with client.messages.stream(model="chat", max_tokens=100, messages=[{"role": "user", "content": "Hi"}],
                                      tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    tools = [b for b in final.content if b.type == "tool_use"]
    assert [(t.name, t.input) for t in tools] == [("get_weather", {"location": "San Francisco, CA"}), ("get_time", {})]
    assert final.usage.input_tokens == 472 and final.usage.output_tokens == 89


# -- through the simulated provider speaking Anthropic's protocol ------------------------------------------------------
SIM_KEY = "sk-ant-sim-0123456789abcdef"


def sim_claude(id: str, sim: SimProvider) -> dict[str, Any]:
    return {"id": id, "provider": "anthropic", "model": "claude-sim", "api_base": sim.base_url, "api_key": SIM_KEY}


async def test_sim_openai_sdk_stream_and_tools(start_sim: StartSim, start_gateway: StartGateway,
                                               make_client: MakeClient) -> None:
    sim = await start_sim(protocol="anthropic", api_key=SIM_KEY, output_tokens=6)
    gateway = await start_gateway(config(model("chat", sim_claude("claude", sim))))
    client = make_client(gateway)
    completion = await client.chat.completions.create(model="chat", messages=USER)
    assert len((completion.choices[0].message.content or "").split()) == 6
    assert completion.usage is not None and completion.usage.completion_tokens == 6

    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == completion.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6

    stream = await client.chat.completions.create(model="chat", messages=USER, tools=[WEATHER], stream=True)
    arguments, finish = "", None
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or ():
            assert delta.index == 0
            arguments += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and set(json.loads(arguments)) == {"location"}
    assert sim.stats.requests == 3 and sim.stats.ok == 3


async def test_sim_anthropic_sdk_end_to_end(start_sim: StartSim, start_gateway: StartGateway,
                                            make_anthropic: Callable[[Gateway], anthropic.AsyncAnthropic]) -> None:
    sim = await start_sim(protocol="anthropic", api_key=SIM_KEY, output_tokens=4)
    gateway = await start_gateway(config(model("chat", sim_claude("claude", sim))))
    client = make_anthropic(gateway)
    message = await client.messages.create(model="chat", max_tokens=50, messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].type == "text" and len(message.content[0].text.split()) == 4
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
    async with client.messages.stream(model="chat", max_tokens=50, messages=[{"role": "user", "content": "Hi"}],
                                      tools=[tool], tool_choice={"type": "any"}) as stream:
        final = await stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use" and call.name == "get_weather" and set(call.input) == {"location"}


async def test_sim_overloaded_fails_over_to_openai(start_sim: StartSim, start_gateway: StartGateway,
                                                   make_client: MakeClient) -> None:
    busy = await start_sim(protocol="anthropic", api_key=SIM_KEY, error_rate=1.0, error_statuses=[529])
    spare = await start_sim()
    gateway = await start_gateway(config(model("chat", sim_claude("claude", busy), deployment("gpt", spare.base_url),
                                               retries=0)))
    raw = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
    assert raw.headers["x-stellwerk-deployment"] == "gpt"
    assert [c async for c in raw.parse()]
    assert busy.stats.error >= 1
