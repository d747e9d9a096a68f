"""The gemini, ollama and bedrock adapters against the simulated provider speaking their protocols.

The simulator is written independently of the adapters (from the same references), so these
tests check that both sides agree on the wire: chat, streams with usage, tools, JSON mode, and
that the simulator's failures are classified as the router expects.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider

PROTOCOLS = ["gemini", "ollama", "bedrock"]
ACCESS_KEY = "AKIDSIMULATED"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]}}}

StartProtocolSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


@pytest.fixture
def start_protocol_sim(start_sim: Callable[..., Awaitable[SimProvider]]) -> StartProtocolSim:
    """``await start_protocol_sim(protocol, **profile_fields)``: a simulated provider checking the key its way."""

    async def start(protocol: str, **fields: Any) -> SimProvider:
        key = ACCESS_KEY if protocol == "bedrock" else f"{protocol}-sim-key-0123456789"
        return await start_sim(protocol=protocol, api_key=key, **fields)

    return start


def deployment(protocol: str, sim: SimProvider, id: str = "d", **fields: Any) -> dict[str, Any]:
    dep: dict[str, Any] = {"id": id, "provider": protocol, "model": "sim-model"}
    if protocol == "gemini":
        dep.update(api_base=f"{sim.base_url}/v1beta", api_key=f"{protocol}-sim-key-0123456789")
    elif protocol == "ollama":
        dep.update(api_base=sim.base_url, api_key=f"{protocol}-sim-key-0123456789")
    else:
        dep.update(api_base=sim.base_url, region="us-east-1", aws_access_key_id=ACCESS_KEY,
                   aws_secret_access_key="simulated/secret/key/0123456789")
    return {**dep, **fields}


async def client_for(protocol: str, start_protocol_sim: StartProtocolSim, start_gateway: StartGateway,
                     make_client: MakeClient, **profile: Any) -> openai.AsyncOpenAI:
    sim = await start_protocol_sim(protocol, **profile)
    gateway = await start_gateway({"models": [{"name": "chat", "deployments": [deployment(protocol, sim)]}]})
    return make_client(gateway)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_chat_and_stream(protocol: str, start_protocol_sim: StartProtocolSim, start_gateway: StartGateway,
                               make_client: MakeClient) -> None:
    client = await client_for(protocol, start_protocol_sim, start_gateway, make_client, output_tokens=6)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me something."}]
    completion = await client.chat.completions.create(model="chat", messages=messages)
    assert len((completion.choices[0].message.content or "").split()) == 6
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    stream = await client.chat.completions.create(model="chat", messages=messages, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert len("".join(c.choices[0].delta.content or "" for c in chunks if c.choices).split()) == 6
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_max_tokens_is_length(protocol: str, start_protocol_sim: StartProtocolSim, start_gateway: StartGateway,
                                    make_client: MakeClient) -> None:
    client = await client_for(protocol, start_protocol_sim, start_gateway, make_client, output_tokens=20)
    completion = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Go"}],
                                                      max_tokens=3)
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_tools(protocol: str, start_protocol_sim: StartProtocolSim, start_gateway: StartGateway,
                     make_client: MakeClient) -> None:
    client = await client_for(protocol, start_protocol_sim, start_gateway, make_client)
    completion = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Weather?"}],
                                                      tools=[WEATHER], tool_choice="required")
    calls = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather"]
    assert set(json.loads(calls[0].function.arguments)) == {"city", "days"}
    stream = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Weather?"}],
                                                  tools=[WEATHER], tool_choice="required", stream=True)
    arguments = ""
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                arguments += (call.function.arguments or "") if call.function else ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls" and set(json.loads(arguments)) == {"city", "days"}


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rate_limits_and_outages_fail_over(protocol: str, start_protocol_sim: StartProtocolSim,
                                                 start_gateway: StartGateway, make_client: MakeClient) -> None:
    limited = await start_protocol_sim(protocol, rate_limit_rate=1.0, retry_after_s=120)
    broken = await start_protocol_sim(protocol, error_rate=1.0, error_statuses=(503,))
    healthy = await start_protocol_sim(protocol, output_tokens=3)
    gateway = await start_gateway({"models": [{"name": "chat", "retries": 0, "deployments": [
        deployment(protocol, limited, "limited"), deployment(protocol, broken, "broken"),
        deployment(protocol, healthy, "healthy")]}]})
    raw = await make_client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}])
    assert raw.headers["x-stellwerk-deployment"] == "healthy"
    assert raw.headers["x-stellwerk-attempts"] == "3"
    assert len((raw.parse().choices[0].message.content or "").split()) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_context_window_and_content_policy(protocol: str, start_protocol_sim: StartProtocolSim,
                                                 start_gateway: StartGateway, make_client: MakeClient) -> None:
    client = await client_for(protocol, start_protocol_sim, start_gateway, make_client, context_window=8,
                              content_policy_trigger="FORBIDDEN")
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 200}])
    assert info.value.status_code == 400
    policy = await client_for(protocol, start_protocol_sim, start_gateway, make_client, content_policy_trigger="FORBIDDEN")
    try:
        completion = await policy.chat.completions.create(model="chat", messages=[{"role": "user", "content": "FORBIDDEN"}])
    except openai.BadRequestError as err:  # refused before answering: a content-policy outcome
        assert err.status_code == 400
    else:  # answered, but filtered
        assert completion.choices[0].finish_reason == "content_filter"
