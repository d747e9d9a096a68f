"""``POST /v1/responses`` with the official SDK, to openai-, anthropic- and gemini-format deployments:
answers and event streams, tools in a two-step loop, structured output, previous_response_id, refusals."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pydantic
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, config, model, read_response_stream

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"
PROTOCOLS = ["openai", "anthropic", "gemini"]
WEATHER = {"type": "function", "name": "weather", "description": "The weather in a city",
           "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}


async def _client(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> openai.AsyncOpenAI:
    sim = await start_sim(protocol=protocol, api_key=KEY, output_tokens=8)
    base = f"{sim.base_url}/v1beta" if protocol == "gemini" else sim.base_url
    gateway = await start_gateway(config(model("m", {"id": protocol, "provider": protocol, "model": "sim-model",
                                                     "api_base": base, "api_key": KEY})))
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_response_and_its_event_stream(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    client = await _client(protocol, start_sim, start_gateway)
    answer = await client.responses.create(model="m", input="Say hello", instructions="Be brief.")
    assert answer.status == "completed" and answer.output_text
    assert answer.usage is not None and answer.usage.output_tokens > 0
    kinds, text, final = await read_response_stream(client, model="m", input="Say hello")
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
                 "response.output_item.done"):
        assert kind in kinds
    assert "".join(text) == final.output_text and final.usage.output_tokens > 0
    await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_two_step_tool_loop(protocol: str, stream: bool, start_sim: StartSim,
                                    start_gateway: StartGateway) -> None:
    client = await _client(protocol, start_sim, start_gateway)

    async def ask(items: list[Any]) -> Any:
        if not stream:
            return await client.responses.create(model="m", input=items, tools=[WEATHER])  # type: ignore[arg-type]
        async with client.responses.stream(model="m", input=items, tools=[WEATHER]) as events:  # type: ignore[arg-type]
            async for _ in events:
                pass
            return await events.get_final_response()

    items: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = await ask(items)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "weather" and "city" in json.loads(calls[0].arguments)
    items += [calls[0].model_dump(exclude_none=True),
              {"type": "function_call_output", "call_id": calls[0].call_id, "output": "12 degrees"}]
    second = await ask(items)
    assert second.output_text and not [i for i in second.output if i.type == "function_call"]
    await client.close()


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_structured_output_parses(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    client = await _client(protocol, start_sim, start_gateway)
    parsed = await client.responses.parse(model="m", input="Oslo", text_format=City)
    assert isinstance(parsed.output_parsed, City)
    await client.close()


async def test_previous_response_id_continues_the_conversation(start_upstream: Any,
                                                               start_gateway: StartGateway) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("m", {"id": "a", "provider": "openai", "model": "up",
                                                     "api_base": up.base_url})))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    first = await client.responses.create(model="m", input="My name is Ada.", instructions="first")
    second = await client.responses.create(model="m", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    sent = [json.loads(r.body) for r in up.requests]
    assert sent[1]["messages"] == [{"role": "user", "content": "My name is Ada."},
                                   {"role": "assistant", "content": "Hello from upstream"},
                                   {"role": "user", "content": "What is my name?"}]  # instructions not carried over
    unstored = await client.responses.create(model="m", input="x", store=False)
    with pytest.raises(openai.BadRequestError) as missing:
        await client.responses.create(model="m", input="y", previous_response_id=unstored.id)
    assert missing.value.body["param"] == "previous_response_id"  # type: ignore[index]
    await client.close()


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"input": [{"type": "computer_call", "id": "x"}]}, "input[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type"),
    ({"background": True}, "background"),
    ({"text": {"format": {"type": "json_schema"}}}, "text.format"),
    ({"prompt": {"id": "p"}}, "prompt"),
])
async def test_what_cannot_be_served_is_a_400_naming_it(fields: dict[str, Any], param: str, start_sim: StartSim,
                                                        start_gateway: StartGateway) -> None:
    client = await _client("openai", start_sim, start_gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(model="m", **{"input": "hi", **fields})
    assert refused.value.body["param"] == param  # type: ignore[index]
    await client.close()


async def test_a_response_fails_over_like_a_chat(start_sim: StartSim, start_gateway: StartGateway) -> None:
    from support import closed_port_url, deployment

    sim = await start_sim(output_tokens=6)
    gateway = await start_gateway(config(model("m", deployment("down", closed_port_url()),
                                               deployment("up", sim.base_url))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    raw = await client.responses.with_raw_response.create(model="m", input="Hello")
    assert raw.headers["x-stellwerk-deployment"] == "up" and raw.headers["x-stellwerk-attempts"] == "2"
    assert raw.parse().output_text
    await client.close()


async def test_a_stored_response_expires_after_30_days(start_upstream: Any, start_gateway: StartGateway) -> None:
    """Stored responses live in the state store with a ttl (30 days, as OpenAI's), on the gateway's clock."""
    now = [1_000_000.0]
    up = await start_upstream()
    gateway = await start_gateway(config(model("m", {"id": "a", "provider": "openai", "model": "up",
                                                     "api_base": up.base_url})), clock=lambda: now[0])
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    first = await client.responses.create(model="m", input="My name is Ada.")
    now[0] += 30 * 86400 - 60
    second = await client.responses.create(model="m", input="And?", previous_response_id=first.id)
    now[0] += 120
    assert (await client.responses.create(model="m", input="Still?", previous_response_id=second.id)).output_text
    with pytest.raises(openai.BadRequestError) as expired:
        await client.responses.create(model="m", input="Again?", previous_response_id=first.id)
    assert expired.value.body["param"] == "previous_response_id"  # type: ignore[index]
    await client.close()


async def test_the_translated_request_carries_every_field(start_upstream: Any, start_gateway: StartGateway) -> None:
    """What an openai-format deployment gets for a Responses request: instructions, input items, function tools
    and their outputs, tool_choice, text.format, max_output_tokens, reasoning effort, sampling, the user."""
    up = await start_upstream()
    gateway = await start_gateway(config(model("m", {"id": "a", "provider": "openai", "model": "up",
                                                     "api_base": up.base_url})))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"], "additionalProperties": False}
    await client.responses.create(
        model="m", instructions="Be brief.", max_output_tokens=77, reasoning={"effort": "high"}, temperature=0.2,
        top_p=0.9, safety_identifier="u1", tools=[WEATHER], tool_choice={"type": "function", "name": "weather"},  # type: ignore[list-item]
        text={"format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}},
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
               {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{\"city\":\"Oslo\"}"},
               {"type": "function_call_output", "call_id": "c1", "output": "rain"}])
    sent = json.loads(up.requests[0].body)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "rain"}]
    assert sent["max_tokens"] == 77 and sent["reasoning_effort"] == "high" and sent["user"] == "u1"
    assert sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["tools"] == [{"type": "function", "function": {"name": "weather", "parameters": WEATHER["parameters"],
                                                               "description": WEATHER["description"]}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "count", "schema": schema, "strict": True}}
    await client.close()
