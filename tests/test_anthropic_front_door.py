"""The Anthropic-compatible front door end to end: the official ``anthropic`` SDK, unchanged, against a
running gateway whose deployments speak OpenAI's format (the simulated provider and capturing upstreams)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, StreamingResponse
from stellwerk.sim import SimProvider
from support import CaptureUpstream, chunk_event, closed_port_url, config, deployment, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeAnthropic = Callable[[Gateway], anthropic.AsyncAnthropic]

PRICE = {"input_per_mtok": 3.0, "output_per_mtok": 15.0}
HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
WEATHER: dict[str, Any] = {"name": "get_weather", "description": "Weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"]}}


async def sim_gateway(start_sim: StartSim, start_gateway: StartGateway, make_anthropic: MakeAnthropic,
                      **profile: Any) -> tuple[SimProvider, Gateway, anthropic.AsyncAnthropic]:
    sim = await start_sim(**profile)
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url, price=PRICE), retries=0)))
    return sim, gateway, make_anthropic(gateway)


def parse_events(body: bytes) -> list[dict[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            event = json.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            events.append(event)
    return events


# -- messages --------------------------------------------------------------------------------------------------------
async def test_message_headers_usage_and_cost(start_sim: StartSim, start_gateway: StartGateway,
                                              make_anthropic: MakeAnthropic) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic, output_tokens=7)
    raw = await client.messages.with_raw_response.create(model="chat", max_tokens=100, system="Be brief.",
                                                         messages=HELLO, extra_body={"temperature": 0.5})
    message = await raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.model == "up-a"  # the upstream that answered
    assert message.content[0].type == "text" and len(message.content[0].text.split()) == 7
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.output_tokens == 7 and message.usage.input_tokens > 0
    rid = raw.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{24}", rid) and raw.headers["request-id"] == rid and message.id == f"msg_{rid}"
    assert raw.headers["x-stellwerk-deployment"] == "a" and raw.headers["x-stellwerk-attempts"] == "1"
    assert float(raw.headers["x-stellwerk-cost"]) > 0 and "x-stellwerk-route" in raw.headers


async def test_max_tokens_stop_reason_and_client_request_id(start_sim: StartSim, start_gateway: StartGateway,
                                                            make_anthropic: MakeAnthropic) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic, output_tokens=20)
    raw = await client.messages.with_raw_response.create(model="chat", max_tokens=3, messages=HELLO,
                                                         extra_headers={"x-request-id": "trace-42"})
    message = await raw.parse()
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3
    assert raw.headers["x-request-id"] == "trace-42" and message.id == "msg_trace-42"


async def test_translated_request_reaches_the_openai_upstream(start_upstream: StartUpstream,
                                                             start_gateway: StartGateway,
                                                             make_anthropic: MakeAnthropic) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    message = await make_anthropic(gateway).messages.create(
        model="chat", max_tokens=64, system="Be brief.", stop_sequences=["END"], metadata={"user_id": "u-1"},
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "text", "text": "What is this?"}]}])
    assert message.content[0].type == "text" and message.content[0].text == "Hello from upstream"
    assert message.usage.input_tokens == 10 and message.usage.output_tokens == 5
    assert up.last.json == {
        "model": "up-a", "max_tokens": 64, "stop": ["END"], "user": "u-1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "text", "text": "What is this?"}]}]}


async def test_stream_events_in_order(start_sim: StartSim, start_gateway: StartGateway,
                                      make_anthropic: MakeAnthropic) -> None:
    _, gateway, client = await sim_gateway(start_sim, start_gateway, make_anthropic, output_tokens=5)
    response = await request(gateway.port, "POST", "/v1/messages", {
        "model": "chat", "max_tokens": 50, "messages": HELLO, "stream": True})
    assert response.status == 200 and response.headers["content-type"] == "text/event-stream"
    assert response.headers["x-stellwerk-deployment"] == "a"
    events = parse_events(response.body)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[3:-3] == ["content_block_delta"] * 5
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[-2]["usage"]["output_tokens"] == 5 and events[-2]["usage"]["input_tokens"] > 0

    complete = await client.messages.create(model="chat", max_tokens=50, messages=HELLO)
    async with client.messages.stream(model="chat", max_tokens=50, messages=HELLO) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert complete.content[0].type == "text" and text == complete.content[0].text
    assert final.usage.output_tokens == 5 and final.stop_reason == "end_turn"


async def test_tools_round_trip(start_sim: StartSim, start_gateway: StartGateway, make_anthropic: MakeAnthropic) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic)
    message = await client.messages.create(model="chat", max_tokens=100, messages=HELLO, tools=[WEATHER],
                                           tool_choice={"type": "any"})
    assert message.stop_reason == "tool_use"
    call = next(b for b in message.content if b.type == "tool_use")
    assert call.name == "get_weather" and set(call.input) == {"city", "days"}

    async with client.messages.stream(model="chat", max_tokens=100, messages=HELLO, tools=[WEATHER]) as stream:
        final = await stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert final.stop_reason == "tool_use" and streamed.name == "get_weather" and set(streamed.input) == {"city", "days"}

    follow_up = await client.messages.create(model="chat", max_tokens=100, tools=[WEATHER], tool_choice={"type": "none"},
                                             messages=[*HELLO, {"role": "assistant", "content": message.content},
                                                       {"role": "user", "content": [{"type": "tool_result",
                                                                                     "tool_use_id": call.id,
                                                                                     "content": "Sunny, 21 degrees"}]}])
    assert follow_up.stop_reason == "end_turn" and follow_up.content[0].type == "text"


async def test_path_without_v1_prefix(start_sim: StartSim, start_gateway: StartGateway,
                                      make_anthropic: MakeAnthropic) -> None:
    _, gateway, _ = await sim_gateway(start_sim, start_gateway, make_anthropic)
    response = await request(gateway.port, "POST", "/messages", {"model": "chat", "max_tokens": 5, "messages": HELLO})
    assert response.status == 200 and response.json["type"] == "message"


# -- count_tokens ----------------------------------------------------------------------------------------------------
async def test_count_tokens(start_sim: StartSim, start_gateway: StartGateway, make_anthropic: MakeAnthropic) -> None:
    sim, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic)
    short = await client.messages.count_tokens(model="chat", messages=HELLO)
    longer = await client.messages.count_tokens(model="chat", system="You are a meticulous assistant.",
                                                messages=[{"role": "user", "content": "Hello there " * 50}])
    with_tools = await client.messages.count_tokens(model="chat", messages=HELLO, tools=[WEATHER])
    assert 0 < short.input_tokens < longer.input_tokens
    assert with_tools.input_tokens > short.input_tokens
    assert sim.stats.requests == 0  # counted here, not upstream
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.count_tokens(model="nope", messages=HELLO)
    with pytest.raises(anthropic.BadRequestError, match=r"messages\[0\]\.role"):
        await client.messages.count_tokens(model="chat", messages=[{"role": "tool", "content": "x"}])


# -- errors ----------------------------------------------------------------------------------------------------------
async def test_errors_have_anthropic_shape(start_sim: StartSim, start_gateway: StartGateway,
                                           make_anthropic: MakeAnthropic) -> None:
    _, gateway, client = await sim_gateway(start_sim, start_gateway, make_anthropic)
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(model="nope", max_tokens=5, messages=HELLO)
    assert missing.value.body == {"type": "error", "error": {
        "type": "not_found_error", "message": "The model 'nope' does not exist on this gateway. Available models: chat."}}
    with pytest.raises(anthropic.BadRequestError) as invalid:
        await client.messages.create(model="chat", max_tokens=5, messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]}])
    assert invalid.value.body["error"]["type"] == "invalid_request_error"
    assert invalid.value.body["error"]["message"].startswith("messages[0].content[0].source.media_type: ")

    valid = orjson.dumps({"model": "chat", "max_tokens": 5, "messages": HELLO})
    for body, words, extra in ((b"{not json", "could not parse", {}), (b"", "empty", {}),
                               (orjson.dumps({"model": "chat", "messages": HELLO}), "max_tokens: Field required", {}),
                               (valid, "x-stellwerk-timeout", {"x-stellwerk-timeout": "soon"})):
        response = await request(gateway.port, "POST", "/v1/messages", body, {"content-type": "application/json", **extra})
        assert response.status == 400
        assert response.json["type"] == "error" and response.json["error"]["type"] == "invalid_request_error"
        assert words in response.json["error"]["message"]


async def test_rate_limited_everywhere_is_rate_limit_error(start_sim: StartSim, start_gateway: StartGateway,
                                                           make_anthropic: MakeAnthropic) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic, rate_limit_rate=1.0, retry_after_s=30)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.create(model="chat", max_tokens=5, messages=HELLO)
    assert info.value.status_code == 429
    assert info.value.body["error"]["type"] == "rate_limit_error"
    assert "retry-after" in info.value.response.headers


async def test_upstream_failures_are_5xx(start_sim: StartSim, start_gateway: StartGateway,
                                         make_anthropic: MakeAnthropic) -> None:
    _, _, client = await sim_gateway(start_sim, start_gateway, make_anthropic, error_rate=1.0, error_statuses=[500])
    with pytest.raises(anthropic.InternalServerError) as failed:
        await client.messages.create(model="chat", max_tokens=5, messages=HELLO)
    assert failed.value.status_code == 502 and failed.value.body["error"]["type"] == "api_error"

    gateway = await start_gateway(config(model("down", deployment("gone", closed_port_url()), retries=0)))
    with pytest.raises(anthropic.APIStatusError) as down:
        await client.with_options(base_url=f"http://127.0.0.1:{gateway.port}").messages.create(
            model="down", max_tokens=5, messages=HELLO)
    assert down.value.status_code == 503 and down.value.body["error"]["type"] == "overloaded_error"


async def test_stream_broken_off_ends_with_error_event(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                       make_anthropic: MakeAnthropic) -> None:
    async def break_off(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""})
            yield chunk_event({"content": "partial"})
            raise ConnectionResetError("cut")

        return StreamingResponse(chunks())

    up = await start_upstream(break_off)
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url), retries=0)))
    response = await request(gateway.port, "POST", "/v1/messages", {
        "model": "chat", "max_tokens": 50, "messages": HELLO, "stream": True})
    events = parse_events(response.body)
    assert [e["type"] for e in events[:4]] == ["message_start", "content_block_start", "ping", "content_block_delta"]
    assert events[3]["delta"] == {"type": "text_delta", "text": "partial"}
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert "broke off and could not be continued elsewhere" in events[-1]["error"]["message"]
    assert "message_stop" not in [e["type"] for e in events]

    async with make_anthropic(gateway).messages.stream(model="chat", max_tokens=50, messages=HELLO) as stream:
        with pytest.raises(anthropic.APIStatusError, match="broke off"):
            async for _ in stream:
                pass


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_stream_input_tokens_agree_at_start_and_end(protocol: str, start_sim: StartSim,
                                                          start_gateway: StartGateway,
                                                          make_anthropic: MakeAnthropic) -> None:
    """message_start's input_tokens is message_delta's, translating from any upstream protocol (issue 14, item 7)."""
    sim = await start_sim(protocol=protocol, output_tokens=4)
    base = f"{sim.base_url}/v1beta" if protocol == "gemini" else sim.base_url
    gateway = await start_gateway(config(model("chat", deployment("a", base, provider=protocol), retries=0)))
    client = make_anthropic(gateway)
    async with client.messages.stream(model="chat", max_tokens=50, system="Answer in plain words.",
                                      messages=[{"role": "user", "content": "Tell me about the signal box " * 20}]) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_message()
    start = next(e for e in events if e.type == "message_start")
    delta = next(e for e in events if e.type == "message_delta")
    assert start.message.usage.input_tokens > 0
    assert delta.usage.input_tokens == start.message.usage.input_tokens == final.usage.input_tokens
    assert final.usage.output_tokens == 4
