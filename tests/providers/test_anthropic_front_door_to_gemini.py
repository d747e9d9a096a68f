"""The official Anthropic SDK through ``/v1/messages`` to a Gemini deployment (the Gemini-speaking sim).

Both translations at once: Anthropic Messages in → canonical → Gemini generateContent out, and back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider

KEY = "gemini-sim-key-0123456789"
WEATHER: dict[str, Any] = {"name": "get_weather", "description": "Weather in a city", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def gateway_to_gemini(start_sim: Callable[..., Awaitable[SimProvider]],
                            start_gateway: Callable[..., Awaitable[Gateway]]) -> tuple[SimProvider, Gateway]:
    sim = await start_sim(protocol="gemini", api_key=KEY, output_tokens=12)
    gateway = await start_gateway({"models": [{"name": "claude-like", "deployments": [{
        "id": "gemini", "provider": "gemini", "model": "gemini-2.0-flash", "api_base": f"{sim.base_url}/v1beta",
        "api_key": KEY}]}]})
    return sim, gateway


async def test_messages_and_stream_reach_gemini(start_sim: Any, start_gateway: Any, make_anthropic: Any) -> None:
    sim, gateway = await gateway_to_gemini(start_sim, start_gateway)
    client = make_anthropic(gateway)
    message = await client.messages.create(model="claude-like", max_tokens=64, system="Be brief.",
                                           messages=[{"role": "user", "content": "Hello"}])
    assert message.role == "assistant" and message.stop_reason == "end_turn"
    text = message.content[0].text
    assert len(text.split()) == 12
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    async with client.messages.stream(model="claude-like", max_tokens=64,
                                      messages=[{"role": "user", "content": "Hello"}]) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert streamed == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert sim.stats.requests == 2


async def test_tool_use_round_trip_through_gemini(start_sim: Any, start_gateway: Any, make_anthropic: Any) -> None:
    _, gateway = await gateway_to_gemini(start_sim, start_gateway)
    client = make_anthropic(gateway)
    first = await client.messages.create(model="claude-like", max_tokens=64, tools=[WEATHER],
                                         messages=[{"role": "user", "content": "Weather in Oslo?"}])
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and "city" in call.input
    second = await client.messages.create(model="claude-like", max_tokens=64, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ])
    assert second.stop_reason in ("tool_use", "end_turn")  # the sim calls the tool whenever tools are given
