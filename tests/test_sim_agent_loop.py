"""The simulated providers end agent loops: a tool call first, then text once the tool's result is in the
conversation, on every protocol, through the gateway with the openai SDK. And they cap embedding sizes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, config, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"
WEATHER = {"type": "function", "function": {"name": "weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "required": ["city"],
                                                           "properties": {"city": {"type": "string"}}}}}


def backed_by(protocol: str, sim: SimProvider) -> dict[str, Any]:
    base = {"gemini": f"{sim.base_url}/v1beta"}.get(protocol, sim.base_url)
    return {"id": protocol, "provider": protocol, "model": "sim-model", "api_base": base, "api_key": KEY}


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
async def test_a_two_step_tool_loop_ends(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol=protocol, api_key=None if protocol == "ollama" else KEY)
    gateway = await start_gateway(config(model("agent", backed_by(protocol, sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = await client.chat.completions.create(model="agent", messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "12 degrees, rain"}]
    second = await client.chat.completions.create(model="agent", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content
    assert not second.choices[0].message.tool_calls
    await client.close()


async def test_embedding_dimensions_are_capped(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("embed", backed_by("openai", sim) | {"api_base": sim.base_url})))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    assert len((await client.embeddings.create(model="embed", input="x", dimensions=8)).data[0].embedding) == 8
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="embed", input="x", dimensions=11882702584)
    await client.close()


async def test_n_choices_come_back(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim(output_tokens=4)
    gateway = await start_gateway(config(model("chat", backed_by("openai", sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    answer = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2] and all(c.message.content for c in answer.choices)
    assert answer.usage is not None and answer.usage.completion_tokens == 12
    await client.close()


async def test_streamed_n_choices_come_back(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim(output_tokens=4)
    gateway = await start_gateway(config(model("chat", backed_by("openai", sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    stream = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], n=2,
                                                  stream=True, stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    finished: dict[int, str] = {}
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert set(texts) == {0, 1} and len(texts[0].split()) == 4 and texts[0] == texts[1]
    assert finished == {0: "stop", 1: "stop"}
    assert usage is not None and usage.completion_tokens == 8
    await client.close()


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
async def test_the_system_prompt_is_honoured(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    """The sim answers in as many words as the system prompt asks for, so a lost system prompt shows."""
    sim = await start_sim(protocol=protocol, api_key=None if protocol == "ollama" else KEY, output_tokens=20)
    gateway = await start_gateway(config(model("chat", backed_by(protocol, sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    hello = {"role": "user", "content": "Tell me about trains."}
    told = await client.chat.completions.create(model="chat", messages=[
        {"role": "system", "content": "You are terse. Answer in 3 words."}, hello])
    plain = await client.chat.completions.create(model="chat", messages=[hello])
    assert len((told.choices[0].message.content or "").split()) == 3
    assert len((plain.choices[0].message.content or "").split()) == 20
    await client.close()
