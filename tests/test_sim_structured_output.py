"""The simulated providers' structured output follows the requested schema, so SDK ``parse`` helpers work on
every protocol: nested models (``$ref``), enums, bounds, list lengths, formats, through the gateway with the
``openai`` SDK (chat and Responses) and the ``anthropic`` SDK (``messages.parse`` with ``output_config``)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anthropic
import openai
import pydantic
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from stellwerk.sim.content import schema_example
from support import GUARD, config, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"


class Station(pydantic.BaseModel):
    name: str = pydantic.Field(min_length=5)
    platforms: int = pydantic.Field(ge=2, le=30)


class Timetable(pydantic.BaseModel):
    line: Literal["north", "south"]
    first: Station
    stops: list[Station] = pydantic.Field(min_length=2)
    valid_from: datetime.date
    punctuality: float = pydantic.Field(gt=90, lt=100)
    note: str | None


def backed_by(protocol: str, sim: SimProvider) -> dict[str, Any]:
    base = {"gemini": f"{sim.base_url}/v1beta"}.get(protocol, sim.base_url)
    return {"id": protocol, "provider": protocol, "model": "sim-model", "api_base": base, "api_key": KEY}


def test_the_example_satisfies_the_schema() -> None:
    value = schema_example(Timetable.model_json_schema())
    assert Timetable.model_validate(value).stops[1].platforms == 2
    assert schema_example({"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}) == {"a": "sim"}
    assert schema_example({"type": "integer", "multipleOf": 7, "minimum": 10}) == 14
    # constraints an API cannot express, stated in the description (Anthropic SDK, the gateway's Gemini schemas)
    assert schema_example({"type": "number", "description": "Share\n\n{exclusiveMinimum: 90, maximum: 95}"}) == 90.5
    assert schema_example({"type": "string", "description": "{minLength: 6}"}) == "simsss"


def test_gemini_schemas_carry_what_gemini_cannot_express_in_the_description() -> None:
    from stellwerk.providers.gemini.schema import to_gemini_schema

    converted = to_gemini_schema({"type": "number", "description": "Share", "exclusiveMinimum": 90, "maximum": 100})
    assert converted == {"type": "NUMBER", "description": "Share\n\n{exclusiveMinimum: 90}", "maximum": 100}


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
async def test_openai_sdk_parse_on_every_protocol(protocol: str, start_sim: StartSim,
                                                  start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol=protocol, api_key=None if protocol == "ollama" else KEY)
    gateway = await start_gateway(config(model("m", backed_by(protocol, sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    chat = await client.chat.completions.parse(model="m", messages=[{"role": "user", "content": "timetable"}],
                                               response_format=Timetable)
    assert isinstance(chat.choices[0].message.parsed, Timetable)
    answer = await client.responses.parse(model="m", input="timetable", text_format=Timetable)
    assert isinstance(answer.output_parsed, Timetable)
    await client.close()


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_anthropic_messages_parse_on_every_protocol(protocol: str, start_sim: StartSim,
                                                          start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol=protocol, api_key=KEY)
    gateway = await start_gateway(config(model("m", backed_by(protocol, sim))))
    client = anthropic.AsyncAnthropic(base_url=gateway.base_url.removesuffix("/v1"), api_key="k", max_retries=0,
                                      timeout=GUARD)
    message = await client.messages.parse(model="m", max_tokens=500, output_format=Timetable,
                                          messages=[{"role": "user", "content": "timetable"}])
    assert isinstance(message.parsed_output, Timetable)
    await client.close()


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
async def test_json_mode_answers_in_the_shape_the_prompt_shows(protocol: str, start_sim: StartSim,
                                                               start_gateway: StartGateway) -> None:
    """``json_object`` (on Anthropic deployments an instruction in the system prompt) answers a JSON object: the
    one the conversation shows as an example, else ``{"reply": ...}``."""
    sim = await start_sim(protocol=protocol, api_key=None if protocol == "ollama" else KEY, output_tokens=3)
    gateway = await start_gateway(config(model("m", backed_by(protocol, sim))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    shown = await client.chat.completions.create(model="m", response_format={"type": "json_object"}, messages=[
        {"role": "user", "content": 'Where to? Reply like {"city": "Oslo", "days": 2}'}])
    assert json.loads(shown.choices[0].message.content or "") == {"city": "Oslo", "days": 2}
    plain = await client.chat.completions.create(model="m", response_format={"type": "json_object"},
                                                 messages=[{"role": "user", "content": "Where to?"}])
    assert len(json.loads(plain.choices[0].message.content or "")["reply"].split()) == 3
    await client.close()
