"""``native_responses: true``: ``/v1/responses`` forwarded unchanged to an openai-format deployment's own
``/v1/responses`` (the simulated OpenAI serves it natively, with ``resp_sim...`` ids), answers and event streams
back as they came, failover between native and translated deployments, with the official ``openai`` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import openai
import pydantic
import pytest

from stellwerk import load_dict
from stellwerk.errors import ConfigError
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.sim import SimProvider
from support import GUARD, CaptureUpstream, closed_port_url, config, model, read_response_stream, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
KEY = "sim-key-0123456789abcdef"
WEATHER = {"type": "function", "name": "weather", "description": "The weather in a city",
           "parameters": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}


def native(id: str, base: str) -> dict[str, Any]:
    return {"id": id, "provider": "openai", "model": "sim-model", "api_base": base, "api_key": KEY,
            "native_responses": True}


def translated(id: str, sim: SimProvider) -> dict[str, Any]:
    return {"id": id, "provider": "gemini", "model": "sim-model", "api_base": f"{sim.base_url}/v1beta", "api_key": KEY}


async def _gateway(start_sim: StartSim, start_gateway: StartGateway, **profile: Any) -> tuple[SimProvider, Gateway]:
    sim = await start_sim(api_key=KEY, output_tokens=6, **profile)
    return sim, await start_gateway(config(model("m", native("native", sim.base_url), retries=0)))


def _client(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)


async def test_a_native_answer_and_stream_come_back_as_the_upstream_wrote_them(start_sim: StartSim,
                                                                               start_gateway: StartGateway) -> None:
    sim, gateway = await _gateway(start_sim, start_gateway)
    client = _client(gateway)
    raw = await client.responses.with_raw_response.create(model="m", input="Say hello", instructions="Be brief.")
    answer = raw.parse()
    assert answer.id.startswith("resp_sim") and answer.model == "sim-model"  # the upstream's own response
    assert answer.status == "completed" and len(answer.output_text.split()) == 6
    assert answer.usage is not None and answer.usage.output_tokens == 6
    assert raw.headers["x-stellwerk-deployment"] == "native" and float(raw.headers["x-stellwerk-cost"]) == 0
    kinds, text, final = await read_response_stream(client, model="m", input="Say hello")
    assert final.id.startswith("resp_sim") and "".join(text) == final.output_text
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert sim.stats.requests == 2 and sim.stats.streams == 1
    await client.close()


async def test_the_request_reaches_the_upstream_unchanged(start_upstream: StartUpstream,
                                                          start_gateway: StartGateway) -> None:
    """What the native deployment gets is the client's body, with only the model replaced."""
    answer = {"id": "resp_up1", "object": "response", "created_at": 1, "status": "completed", "model": "up",
              "output": [{"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                          "content": [{"type": "output_text", "text": "hi", "annotations": []}]}],
              "usage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6,
                        "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}}

    async def respond(req: Request) -> Response:
        return Response(200, json.dumps(answer).encode())

    upstream = await start_upstream(respond)
    gateway = await start_gateway(config(model("m", native("native", upstream.base_url), retries=0)))
    sent = {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}],
            "instructions": "Be brief.", "max_output_tokens": 50, "metadata": {"app": "x"}, "store": False,
            "reasoning": {"effort": "low"}}
    response = await request(gateway.port, "POST", "/v1/responses", sent)
    assert response.status == 200 and json.loads(response.body) == answer
    assert [(r.path, r.json) for r in upstream.requests] == [("/v1/responses", {**sent, "model": "sim-model"})]


async def test_structured_output_and_a_tool_loop_natively(start_sim: StartSim, start_gateway: StartGateway) -> None:
    _, gateway = await _gateway(start_sim, start_gateway)
    client = _client(gateway)

    class City(pydantic.BaseModel):
        name: str
        population: int

    parsed = await client.responses.parse(model="m", input="A city", text_format=City)
    assert parsed.id.startswith("resp_sim") and isinstance(parsed.output_parsed, City)
    first = await client.responses.create(model="m", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    call = next(item for item in first.output if item.type == "function_call")
    assert first.id.startswith("resp_sim") and call.name == "weather" and "city" in json.loads(call.arguments)
    second = await client.responses.create(model="m", input=[
        {"role": "user", "content": "Weather in Oslo?"}, call.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"type": "function_call_output", "call_id": call.call_id, "output": "12 degrees"}], tools=[WEATHER])  # type: ignore[list-item]
    assert second.id.startswith("resp_sim") and second.output_text
    # continuing the stored conversation goes by translation (the conversation is the gateway's)
    third = await client.responses.create(model="m", previous_response_id=second.id, input="And tomorrow?")
    assert not third.id.startswith("resp_sim") and third.output_text
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_failover_from_a_native_deployment_to_a_translated_one(stream: bool, start_sim: StartSim,
                                                                     start_gateway: StartGateway) -> None:
    gemini = await start_sim(protocol="gemini", api_key=KEY, output_tokens=5)
    gateway = await start_gateway(config(model("m", native("native", closed_port_url()), translated("gemini", gemini),
                                               strategy="failover", retries=1)))
    client = _client(gateway)
    if stream:
        async with client.responses.stream(model="m", input="Say hello") as events:
            async for _ in events:
                pass
            answer = await events.get_final_response()
    else:
        answer = await client.responses.create(model="m", input="Say hello")
    assert answer.id.startswith("resp_") and not answer.id.startswith("resp_sim")  # translated by the gateway
    assert len(answer.output_text.split()) == 5
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_failover_from_a_failing_native_deployment_to_another_native_one(
        stream: bool, start_sim: StartSim, start_gateway: StartGateway) -> None:
    down = await start_sim(api_key=KEY, error_rate=1.0, error_statuses=(503,))
    up = await start_sim(api_key=KEY, output_tokens=3)
    gateway = await start_gateway(config(model("m", native("down", down.base_url), native("up", up.base_url),
                                               strategy="failover", retries=1)))
    response = await request(gateway.port, "POST", "/v1/responses", {"model": "m", "input": "hi", "stream": stream})
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "up"
    assert response.headers["x-stellwerk-attempts"] == "2"
    assert b"resp_sim" in response.body


def _event(kind: str, seq: int, **fields: Any) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), json.dumps({"type": kind, "sequence_number": seq,
                                                                      **fields}).encode())


async def test_a_native_stream_that_breaks_off_ends_with_response_failed(start_upstream: StartUpstream,
                                                                         start_gateway: StartGateway) -> None:
    """Once its events reached the client, a native stream is not continued elsewhere: it ends with ``error``
    and ``response.failed``, numbered on from the upstream's events."""
    go = asyncio.Event()
    response = {"id": "resp_up2", "object": "response", "created_at": 1, "status": "in_progress", "model": "up",
                "output": []}

    async def respond(req: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield (_event("response.created", 0, response=response) + _event("response.in_progress", 1, response=response)
                   + _event("response.output_text.delta", 2, item_id="msg_1", output_index=0, content_index=0,
                            delta="Hello"))
            await go.wait()  # the client has the answer's head: the stream has begun
            yield _event("error", 3, code="server_error", message="upstream fell over", param=None)
        return StreamingResponse(events())

    upstream = await start_upstream(respond)
    spare = await start_upstream()
    gateway = await start_gateway(config(model("m", native("breaking", upstream.base_url),
                                               native("spare", spare.base_url), strategy="failover", retries=1)))
    async with httpx.AsyncClient(timeout=GUARD) as client, client.stream(
            "POST", f"{gateway.base_url}/responses", json={"model": "m", "input": "hi", "stream": True}) as answer:
        assert answer.headers["x-stellwerk-deployment"] == "breaking"
        go.set()
        body = await answer.aread()
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.output_text.delta",
                                           "error", "response.failed"]
    assert [e["sequence_number"] for e in events] == [0, 1, 2, 3, 4]
    assert "breaking" in events[3]["message"] and "upstream fell over" in events[3]["message"]
    assert events[4]["response"]["id"] == "resp_up2" and events[4]["response"]["status"] == "failed"
    assert spare.requests == []


def test_native_responses_is_for_openai_format_deployments_only() -> None:
    with pytest.raises(ConfigError, match="native_responses"):
        load_dict(config(model("m", {"id": "a", "provider": "anthropic", "model": "claude", "api_key": "x",
                                     "native_responses": True})), env={})


async def test_the_simulated_openai_serves_the_responses_api(start_sim: StartSim) -> None:
    """The sim itself, with the SDK pointed at it: answers, streams, structured output, a tool loop's end."""
    sim = await start_sim(api_key=KEY, output_tokens=4)
    client = openai.AsyncOpenAI(base_url=sim.base_url, api_key=KEY, max_retries=0, timeout=GUARD)
    answer = await client.responses.create(model="sim-model", input="hi", instructions="Answer in 2 words.")
    assert answer.id.startswith("resp_sim") and len(answer.output_text.split()) == 2
    async with client.responses.stream(model="sim-model", input="hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert len(final.output_text.split()) == 4 and final.usage is not None and final.usage.output_tokens == 4

    class Point(pydantic.BaseModel):
        x: int
        label: str

    parsed = await client.responses.parse(model="sim-model", input="a point", text_format=Point)
    assert isinstance(parsed.output_parsed, Point)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="sim-model", input="hi", tools=[{"type": "web_search"}])  # type: ignore[list-item]
    await client.close()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["native", "translated"])
async def test_a_hedge_answers_a_responses_request(kind: str, stream: bool, start_upstream: StartUpstream,
                                                   start_sim: StartSim, start_gateway: StartGateway) -> None:
    """Hedging applies to /v1/responses as to chat: a hanging first deployment gets a hedge, which answers
    (natively or by translation), and the hanging attempt is cancelled."""
    hanging = await start_upstream()
    hanging.respond = hanging.hang_forever
    sim = await start_sim(api_key=KEY, output_tokens=3)
    spare = native("spare", sim.base_url) | ({} if kind == "native" else {"native_responses": False})
    gateway = await start_gateway(config(model("m", native("hanging", hanging.base_url), spare,
                                               strategy="failover", hedge={"delay": 0.01})))
    response = await request(gateway.port, "POST", "/v1/responses", {"model": "m", "input": "hi", "stream": stream})
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "spare"
    assert response.headers["x-stellwerk-attempts"] == "2"
    assert (b"resp_sim" in response.body) == (kind == "native")
    await asyncio.wait_for(hanging.cancelled.wait(), GUARD)


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cached_answer_of_a_native_deployment(stream: bool, start_sim: StartSim,
                                                      start_gateway: StartGateway) -> None:
    """A native stream's answer is cached as chat (and replayed translated); a native complete answer, which is
    not in chat's shape, is not cached at all."""
    sim = await start_sim(api_key=KEY, output_tokens=3)
    gateway = await start_gateway(config(model("m", native("native", sim.base_url), cache={"mode": "exact"})))
    body = {"model": "m", "input": "hi", "stream": stream}
    first = await request(gateway.port, "POST", "/v1/responses", body)
    second = await request(gateway.port, "POST", "/v1/responses", body)
    assert first.status == second.status == 200 and b"resp_sim" in first.body
    assert second.headers["x-stellwerk-cache"] == ("hit" if stream else "miss")
    if stream:
        events = [json.loads(line[6:]) for line in second.body.decode().splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == json.loads(
            first.body.decode().splitlines()[-2][6:])["response"]["output"][0]["content"][0]["text"]
    assert sim.stats.requests == (1 if stream else 2)


@pytest.mark.parametrize("stream", [False, True])
async def test_what_only_a_native_deployment_can_serve_goes_to_it(stream: bool, start_upstream: StartUpstream,
                                                                  start_sim: StartSim,
                                                                  start_gateway: StartGateway) -> None:
    """Built-in tools cannot be translated to chat: the model's native deployment gets the request, the
    translating ones refuse it without being sent anything; with no native deployment it is the 400 naming it."""
    answer = {"id": "resp_up3", "object": "response", "created_at": 1, "status": "completed", "model": "up",
              "output": [{"type": "web_search_call", "id": "ws_1", "status": "completed"},
                         {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                          "content": [{"type": "output_text", "text": "It rains.", "annotations": []}]}],
              "usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12}}

    async def respond(req: Request) -> Response | StreamingResponse:
        if not json.loads(req.body).get("stream"):
            return Response(200, json.dumps(answer).encode())

        async def events() -> AsyncIterator[bytes]:
            yield _event("response.created", 0, response={**answer, "status": "in_progress", "output": []})
            yield _event("response.output_text.delta", 1, item_id="msg_1", output_index=1, content_index=0,
                         delta="It rains.")
            yield _event("response.completed", 2, response=answer)
        return StreamingResponse(events())

    gemini = await start_sim(protocol="gemini", api_key=KEY)
    upstream = await start_upstream(respond)
    gateway = await start_gateway(config(
        model("m", translated("gemini", gemini), native("native", upstream.base_url), strategy="failover"),
        model("plain", translated("gemini-plain", gemini))))
    sent = {"model": "m", "input": "Weather in Oslo today?", "tools": [{"type": "web_search"}], "stream": stream}
    response = await request(gateway.port, "POST", "/v1/responses", sent)
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "native"
    assert response.headers["x-stellwerk-attempts"] == "2" and b"web_search_call" in response.body
    assert [r.json for r in upstream.requests] == [{**sent, "model": "sim-model"}]
    assert gemini.stats.requests == 0  # refused before anything was sent
    refused = await request(gateway.port, "POST", "/v1/responses", {**sent, "model": "plain"})
    assert refused.status == 400 and refused.json["error"]["param"] == "tools[0]"
    later = await request(gateway.port, "POST", "/v1/responses", {**sent, "background": True})
    assert later.status == 400 and later.json["error"]["param"] == "background"  # no GET /v1/responses/{id} here
    assert len(upstream.requests) == 1
