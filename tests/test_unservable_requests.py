"""Requests no deployment can serve get 400 naming the parameter, not a 502 or 503 that SDKs would retry.

Also: token-id embedding input (LangChain's OpenAIEmbeddings default) reaches providers that take text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, USER, config, deployment, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"


def sdk(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)


async def test_n_above_one_on_anthropic_only_deployments_is_a_400_naming_n(start_sim: StartSim,
                                                                            start_gateway: StartGateway) -> None:
    sims = [await start_sim(protocol="anthropic", api_key=KEY) for _ in range(2)]
    deps = [{"id": f"c{i}", "provider": "anthropic", "model": "claude", "api_base": s.base_url, "api_key": KEY}
            for i, s in enumerate(sims)]
    gateway = await start_gateway(config(model("chat", *deps)))
    client = sdk(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="chat", messages=USER, n=2)
    body: Any = refused.value.body
    assert body["param"] == "n" and body["code"] == "unsupported_by_deployments"
    assert "n > 1" in body["message"]
    assert (await client.chat.completions.create(model="chat", messages=USER, n=1)).choices
    assert sum(s.stats.requests for s in sims) == 1  # nothing was sent for the refused request
    await client.close()


async def test_tools_to_a_model_without_tool_support_is_a_400_naming_tools(start_sim: StartSim,
                                                                           start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url, supports_tools=False))))
    client = sdk(gateway)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="chat", messages=USER, tools=[tool])
    body: Any = refused.value.body
    assert body["param"] == "tools" and "no tools" in body["message"]
    assert sim.stats.requests == 0
    await client.close()


async def test_tags_no_deployment_has_are_a_400(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url, tags={"region": "us"}))))
    client = sdk(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="chat", messages=USER,
                                             extra_headers={"x-stellwerk-tags": "region=eu"})
    body: Any = refused.value.body
    assert body["param"] == "x-stellwerk-tags"
    ok = await client.chat.completions.create(model="chat", messages=USER,
                                              extra_headers={"x-stellwerk-tags": "region=us"})
    assert ok.choices
    await client.close()


async def test_token_id_input_reaches_a_gemini_embedding_model(start_sim: StartSim,
                                                               start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol="gemini", api_key=KEY, embedding_dimensions=8)
    gateway = await start_gateway(config(model("embed", {
        "id": "g", "provider": "gemini", "model": "text-embedding-004", "api_base": f"{sim.base_url}/v1beta",
        "api_key": KEY})))
    client = sdk(gateway)
    by_ids = await client.embeddings.create(model="embed", input=[[15339, 1917], [15339]])  # "hello world", "hello"
    by_text = await client.embeddings.create(model="embed", input=["hello world", "hello"])
    assert [d.embedding for d in by_ids.data] == [d.embedding for d in by_text.data]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.embeddings.create(model="embed", input=[[-5]])
    assert refused.value.body["param"] == "input"  # type: ignore[index]
    await client.close()


async def test_logprobs_nobody_can_give_are_a_400_and_pass_where_they_can(start_sim: StartSim,
                                                                           start_gateway: StartGateway) -> None:
    claude = await start_sim(protocol="anthropic", api_key=KEY)
    gpt = await start_sim()
    gateway = await start_gateway(config(
        model("claude", {"id": "c", "provider": "anthropic", "model": "claude", "api_base": claude.base_url,
                         "api_key": KEY}),
        model("mixed", {"id": "c2", "provider": "anthropic", "model": "claude", "api_base": claude.base_url,
                        "api_key": KEY}, deployment("g", gpt.base_url))))
    client = sdk(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="claude", messages=USER, logprobs=True, top_logprobs=2)
    assert refused.value.body["param"] == "logprobs"  # type: ignore[index]
    served = await client.chat.completions.with_raw_response.create(model="mixed", messages=USER, logprobs=True)
    assert served.headers["x-stellwerk-deployment"] == "g"  # the deployment that can give them answers
    await client.close()


async def test_embeddings_without_upstream_usage_report_an_estimate(start_sim: StartSim,
                                                                    start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol="gemini", api_key=KEY, embedding_dimensions=4)
    gateway = await start_gateway(config(model("embed", {
        "id": "g", "provider": "gemini", "model": "text-embedding-004", "api_base": f"{sim.base_url}/v1beta",
        "api_key": KEY})))
    client = sdk(gateway)
    answer = await client.embeddings.create(model="embed", input=["a" * 40, "b" * 40])
    assert answer.usage.prompt_tokens == 20 and answer.usage.total_tokens == 20  # ~4 characters a token
    assert (await client.embeddings.create(model="embed", input=[[1, 2, 3]])).usage.prompt_tokens == 3
    await client.close()


CUSTOM = {"type": "custom", "custom": {"name": "run_sql", "description": "Run one SQL query"}}


async def test_custom_tools_pass_to_openai_format_deployments(start_upstream: Any,
                                                               start_gateway: StartGateway) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    client = sdk(gateway)
    history = [*USER, {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "custom", "custom": {"name": "run_sql", "input": "select 1"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "1"}]
    answer = await client.chat.completions.create(model="chat", messages=history, tools=[CUSTOM])  # type: ignore[list-item]
    assert answer.choices[0].message.content
    sent = orjson.loads(up.requests[0].body)
    assert sent["tools"] == [CUSTOM] and sent["messages"][1]["tool_calls"][0]["type"] == "custom"
    await client.close()


async def test_custom_tools_to_other_providers_are_a_400_naming_tools(start_sim: StartSim,
                                                                      start_gateway: StartGateway) -> None:
    sim = await start_sim(protocol="anthropic", api_key=KEY)
    gateway = await start_gateway(config(model("chat", {"id": "c", "provider": "anthropic", "model": "claude",
                                                        "api_base": sim.base_url, "api_key": KEY})))
    client = sdk(gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(model="chat", messages=USER, tools=[CUSTOM])  # type: ignore[list-item]
    assert refused.value.body["param"] == "tools"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as malformed:
        await client.chat.completions.create(model="chat", messages=USER,
                                             tools=[{"type": "custom", "custom": {}}])  # type: ignore[list-item]
    assert malformed.value.body["param"] == "tools[0].custom.name"  # type: ignore[index]
    await client.close()


async def test_max_tokens_beyond_every_window_is_blamed_on_max_tokens(start_sim: StartSim,
                                                                      start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url, context_window=1000))))
    client = sdk(gateway)
    with pytest.raises(openai.BadRequestError) as too_much:
        await client.chat.completions.create(model="chat", messages=USER, max_tokens=5000)
    body: Any = too_much.value.body
    assert body["param"] == "max_tokens" and body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as too_long:
        await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "word " * 3000}])
    assert too_long.value.body["param"] == "messages"  # type: ignore[index]
    assert sim.stats.requests == 0
    await client.close()


async def test_a_gateway_that_counts_prompt_tokens_loads_its_tokenizer_before_listening(
        start_sim: StartSim, start_gateway: StartGateway) -> None:
    from stellwerk import tokens

    sim = await start_sim()
    tokens._encoding.cache_clear()  # loaded again below, so later tests find it loaded as before
    await start_gateway(config(model("chat", deployment("a", sim.base_url))))
    assert tokens._encoding.cache_info().currsize == 0  # no context window: nothing to count, nothing loaded
    await start_gateway(config(model("chat", deployment("a", sim.base_url, context_window=1000))))
    assert tokens._encoding.cache_info().currsize == 1
