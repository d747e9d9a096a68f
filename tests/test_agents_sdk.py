"""The OpenAI Agents SDK runs a two-step tool loop through ``/v1/responses`` on every backing protocol (a
gemini-backed model as the issue asks, anthropic, openai translated, and openai with ``native_responses``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import agents
import openai
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, config, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"


@pytest.mark.parametrize("backing", ["gemini", "anthropic", "openai", "openai-native"])
async def test_an_agent_calls_its_tool_and_answers(backing: str, start_sim: StartSim,
                                                   start_gateway: StartGateway) -> None:
    agents.set_tracing_disabled(True)  # the SDK would export traces to OpenAI: no network here
    protocol = backing.removesuffix("-native")
    sim = await start_sim(protocol=protocol, api_key=KEY, output_tokens=6)
    deployment: dict[str, Any] = {"id": "d", "provider": protocol, "model": "sim-model", "api_key": KEY,
                                  "api_base": f"{sim.base_url}/v1beta" if protocol == "gemini" else sim.base_url,
                                  "native_responses": backing == "openai-native"}
    gateway = await start_gateway(config(model("assistant", deployment)))
    calls: list[str] = []

    @agents.function_tool
    def weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return "12 degrees and rain"

    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    agent = agents.Agent(name="forecaster", instructions="Answer with the tool's help.", tools=[weather],
                         model=agents.OpenAIResponsesModel(model="assistant", openai_client=client))
    result = await agents.Runner.run(agent, "What is the weather in Oslo?", max_turns=4)
    assert len(calls) == 1  # the tool ran once, then the model answered in text
    assert isinstance(result.final_output, str) and result.final_output
    streamed = agents.Runner.run_streamed(agent, "And in Bergen?", max_turns=4)
    async for _ in streamed.stream_events():
        pass
    assert len(calls) == 2 and streamed.final_output
    await client.close()
