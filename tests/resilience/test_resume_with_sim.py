"""Mid-stream failover end to end: a provider cuts every stream; the client still gets one complete answer.

The simulated providers share a seed, so they would write the same deterministic reply; a request
that ends with the partial answer (prefill) or with the partial answer and a request to continue
(instruct) gets the rest of it. The client must see exactly the whole reply, once, under one id.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from stellwerk.sim import reply_words

WORDS = 40


def gateway_config(first: str, second: str, resume: str, **model: Any) -> dict[str, Any]:
    return {"models": [{
        "name": "chat", "retries": 0, "timeout": 5,
        "breaker": {"consecutive_failures": 1000},
        **model,
        "deployments": [
            {"id": "cutting", "provider": "openai", "model": "m", "api_base": first, "api_key": "sk-a"},
            {"id": "steady", "provider": "openai", "model": "m", "api_base": second, "api_key": "sk-b",
             "resume": resume},
        ],
    }]}


@pytest.mark.parametrize("resume", ["prefill", "instruct"])
async def test_a_cut_stream_is_finished_by_another_deployment(start_sim: Any, start_gateway: Any, resume: str) -> None:
    cutting = await start_sim(output_tokens=WORDS, drop_mid_stream_rate=1.0, seed=7)
    steady = await start_sim(output_tokens=WORDS, seed=7)
    gateway = await start_gateway(gateway_config(cutting.base_url, steady.base_url, resume))
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as client:
        for _ in range(3):
            await one_story(client)
    assert cutting.stats.requests >= 3 and steady.stats.requests == 3


async def one_story(client: openai.AsyncOpenAI) -> None:
    """One streamed story; it must arrive whole, once, under one id."""
    stream = await client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "Tell me a story"}], stream=True,
        stream_options={"include_usage": True})
    text, ids, finish, usage = [], set(), None, None
    async for chunk in stream:
        ids.add(chunk.id)
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text) == " ".join(reply_words(WORDS, 7))
    assert len(ids) == 1 and finish == "stop"
    assert usage is not None and usage.completion_tokens >= WORDS - 1


async def test_without_resume_the_client_gets_an_error_event_not_a_short_answer(start_sim: Any,
                                                                                start_gateway: Any) -> None:
    cutting = await start_sim(output_tokens=WORDS, drop_mid_stream_rate=1.0, seed=7)
    steady = await start_sim(output_tokens=WORDS, seed=7)
    gateway = await start_gateway(gateway_config(cutting.base_url, steady.base_url, "prefill",
                                                 resume_streams=False))
    async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Tell me a story"}], stream=True)
        with pytest.raises(openai.APIError, match="broke off"):
            async for _ in stream:
                pass
