"""``POST /v1/completions`` (legacy) with the official SDK: answers, streams, echo, token-id prompts, refusals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, config, deployment, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
KEY = "sim-key-0123456789abcdef"


async def _client(start_sim: StartSim, start_gateway: StartGateway, protocol: str = "openai",
                  ) -> tuple[openai.AsyncOpenAI, SimProvider]:
    sim = await start_sim(protocol=protocol, api_key=KEY, output_tokens=6)
    dep = deployment("a", sim.base_url, provider=protocol, api_key=KEY)
    if protocol == "gemini":
        dep["api_base"] = f"{sim.base_url}/v1beta"
    gateway = await start_gateway(config(model("text", dep)))
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD), sim


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
async def test_a_completion_and_its_stream(protocol: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    client, _ = await _client(start_sim, start_gateway, protocol)
    answer = await client.completions.create(model="text", prompt="Say hi", max_tokens=20)
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.choices[0].text and answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    pieces, finish, usage = [], None, None
    stream = await client.completions.create(model="text", prompt="Say hi", max_tokens=20, stream=True,
                                             stream_options={"include_usage": True})
    async for chunk in stream:
        assert chunk.object == "text_completion"
        for choice in chunk.choices:
            pieces.append(choice.text)
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) and finish in ("stop", "length") and usage is not None
    await client.close()


async def test_echo_token_prompts_and_the_default_max_tokens(start_upstream: Any,
                                                              start_gateway: StartGateway) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("text", deployment("a", up.base_url))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    echoed = await client.completions.create(model="text", prompt="Once upon a time", echo=True)
    assert echoed.choices[0].text == "Once upon a timeHello from upstream"
    by_ids = await client.completions.create(model="text", prompt=[15339, 1917])  # "hello world" (cl100k)
    assert by_ids.choices[0].text == "Hello from upstream"
    sent = [orjson.loads(r.body) for r in up.requests]
    assert [s["messages"] for s in sent] == [[{"role": "user", "content": "Once upon a time"}],
                                            [{"role": "user", "content": "hello world"}]]
    assert all(s["max_tokens"] == 16 for s in sent)  # the Completions API's default, not the provider's
    assert all("prompt" not in s and "echo" not in s for s in sent)
    await client.close()


@pytest.mark.parametrize(("fields", "param"), [
    ({"suffix": "end"}, "suffix"), ({"logprobs": 2}, "logprobs"), ({"best_of": 3}, "best_of"),
    ({"prompt": ["one", "two"]}, "prompt"), ({"prompt": {"x": 1}}, "prompt"), ({"echo": "yes"}, "echo"),
])
async def test_what_chat_cannot_express_is_a_400_naming_it(fields: dict[str, Any], param: str, start_sim: StartSim,
                                                           start_gateway: StartGateway) -> None:
    client, sim = await _client(start_sim, start_gateway)
    with pytest.raises(openai.BadRequestError) as refused:
        await client.completions.create(model="text", **{"prompt": "p", **fields})
    assert refused.value.body["param"] == param  # type: ignore[index]
    assert sim.stats.requests == 0
    await client.close()


def _text_completion(req: Any) -> Any:
    from stellwerk.http.server import Response, StreamingResponse

    body = orjson.loads(req.body)
    if not req.path.endswith("/completions") or req.path.endswith("/chat/completions"):
        return Response(500, b'{"error": {"message": "this upstream serves /completions only"}}')
    if body.get("stream"):
        async def events() -> Any:
            for piece in ("Once", " upon"):
                yield b"data: " + orjson.dumps({"id": "cmpl-x", "object": "text_completion", "created": 1,
                                                "model": "base-7b", "choices": [{"text": piece, "index": 0,
                                                                                  "finish_reason": None}]}) + b"\n\n"
            yield b"data: " + orjson.dumps({"id": "cmpl-x", "object": "text_completion", "created": 1,
                                            "model": "base-7b", "choices": [{"text": "", "index": 0,
                                                                              "finish_reason": "length"}],
                                            "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                                      "total_tokens": 5}}) + b"\n\n"
            yield b"data: [DONE]\n\n"
        return StreamingResponse(events())
    return Response(200, orjson.dumps({"id": "cmpl-x", "object": "text_completion", "created": 1, "model": "base-7b",
                                       "choices": [{"text": " a time", "index": 0, "finish_reason": "stop"}],
                                       "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}))


async def test_deployments_that_serve_completions_get_them_as_they_are(start_upstream: Any,
                                                                        start_gateway: StartGateway) -> None:
    async def respond(req: Any) -> Any:
        return _text_completion(req)

    up = await start_upstream(respond)
    gateway = await start_gateway(config(model("base", deployment("a", up.base_url, supports_completions=True))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    answer = await client.completions.create(model="base", prompt="Once upon", echo=True, temperature=0.3)
    assert answer.choices[0].text == "Once upon a time" and answer.usage.total_tokens == 5  # type: ignore[union-attr]
    sent = orjson.loads(up.requests[0].body)
    assert up.requests[0].path.endswith("/v1/completions")
    assert sent["prompt"] == "Once upon" and sent["model"] == "up-a" and sent["temperature"] == 0.3
    assert "echo" not in sent and sent["max_tokens"] == 16
    stream = await client.completions.create(model="base", prompt="Tell", stream=True)
    pieces = [c.choices[0].text async for c in stream if c.choices]
    assert "".join(pieces) == "Once upon"
    await client.close()


def test_only_openai_format_deployments_may_serve_completions() -> None:
    from stellwerk import ConfigError, load_dict

    data = config(model("m", {"id": "c", "provider": "anthropic", "model": "claude", "supports_completions": True}))
    with pytest.raises(ConfigError, match="supports_completions: only openai and azure"):
        load_dict(data, env={})
