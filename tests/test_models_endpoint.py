"""``GET /v1/models`` and ``GET /v1/models/{id}`` with the official SDKs, in OpenAI's and Anthropic's shapes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest

from stellwerk.gateway import Gateway
from support import GUARD, config, deployment, model, request

StartGateway = Callable[..., Awaitable[Gateway]]


async def _gateway(start_gateway: StartGateway) -> Gateway:
    up = "http://127.0.0.1:9/v1"  # never called: listing models needs no upstream
    return await start_gateway(config(model("chat", deployment("a", up)), model("team/embed", deployment("b", up))))


async def test_openai_sdk_lists_and_retrieves_models(start_gateway: StartGateway) -> None:
    gateway = await _gateway(start_gateway)
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    assert [m.id async for m in client.models.list()] == ["chat", "team/embed"]
    retrieved = await client.models.retrieve("chat")
    assert (retrieved.id, retrieved.object, retrieved.owned_by) == ("chat", "model", "stellwerk")
    assert (await client.models.retrieve("team/embed")).id == "team/embed"
    with pytest.raises(openai.NotFoundError) as missing:
        await client.models.retrieve("gpt-9")
    body: Any = missing.value.body
    assert body["code"] == "model_not_found" and "gpt-9" in body["message"]
    await client.close()


async def test_anthropic_sdk_lists_and_retrieves_models(start_gateway: StartGateway) -> None:
    gateway = await _gateway(start_gateway)
    client = anthropic.AsyncAnthropic(base_url=f"http://127.0.0.1:{gateway.port}", api_key="k", max_retries=0,
                                      timeout=GUARD)
    page = await client.models.list()
    assert [m.id for m in page.data] == ["chat", "team/embed"]
    assert page.data[0].type == "model" and page.data[0].display_name == "chat"
    assert (await client.models.retrieve("chat")).id == "chat"
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.models.retrieve("claude-9")
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    await client.close()


async def test_unknown_messages_paths_answer_in_anthropics_shape(start_gateway: StartGateway) -> None:
    gateway = await _gateway(start_gateway)
    answer = await request(gateway.port, "POST", "/v1/messages/batches", {})
    assert answer.status == 404
    assert answer.json["type"] == "error" and answer.json["error"]["type"] == "not_found_error"
    other = await request(gateway.port, "GET", "/v1/nothing")
    assert other.status == 404 and other.json["error"]["code"] == "not_found"
