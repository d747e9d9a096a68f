"""Anthropic structured outputs (``output_config.format``) through /v1/messages, honoured on every provider.

``messages.parse`` sends the schema of a pydantic model; the gateway maps it to each deployment's own
structured output (native on anthropic and gemini, ``response_format`` on openai-format ones), so the
answer parses. A malformed ``output_config`` is a 400 naming it, never dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pydantic
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, config, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


async def _client(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> anthropic.AsyncAnthropic:
    sim = await start_sim(protocol=protocol, api_key=KEY)
    base = f"{sim.base_url}/v1beta" if protocol == "gemini" else sim.base_url
    gateway = await start_gateway(config(model("claude", {
        "id": protocol, "provider": protocol, "model": "sim-model", "api_base": base, "api_key": KEY})))
    return anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key="k", max_retries=0,
                                    timeout=GUARD)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_messages_parse_gets_an_answer_of_the_schema(protocol: str, start_sim: StartSim,
                                                           start_gateway: StartGateway) -> None:
    client = await _client(protocol, start_sim, start_gateway)
    parsed = await client.messages.parse(model="claude", max_tokens=200, output_format=Person,
                                         messages=[{"role": "user", "content": "Ada Lovelace, 36, mathematician"}])
    assert isinstance(parsed.parsed_output, Person)
    await client.close()


@pytest.mark.parametrize(("config_value", "param"), [
    ({"format": {"type": "xml"}}, "output_config.format"),
    ({"format": {"type": "json_schema"}}, "output_config.format"),
    ({"verbosity": "high"}, "output_config.verbosity"),
    ({"effort": "extreme"}, "output_config.effort"),
])
async def test_a_malformed_output_config_is_a_400_naming_it(config_value: dict[str, Any], param: str,
                                                             start_sim: StartSim, start_gateway: StartGateway) -> None:
    client = await _client("openai", start_sim, start_gateway)
    with pytest.raises(anthropic.BadRequestError) as refused:
        await client.messages.create(model="claude", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
                                     extra_body={"output_config": config_value})
    assert param in refused.value.body["error"]["message"]  # type: ignore[index]
    await client.close()
