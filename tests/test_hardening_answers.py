"""Issue 9, item 1: large upstream answers come back whole; too large ones fail at once with a 502 naming the limit.

Raw sockets against a real gateway on 127.0.0.1, in front of a capturing upstream. A model timeout far above
the hang guard makes the old failure (a body that stalls until the timeout) fail the test instead of passing late.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from support import GUARD, USER, CaptureUpstream, chunk_event, completion_body, config, deployment, model, request

StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MiB = 1 << 20


def _big_answer(size: int) -> bytes:
    return completion_body("x" * size)


async def _gateway(start_upstream: StartUpstream, start_gateway: StartGateway,
                   respond: Callable[[Request], Awaitable[Response | StreamingResponse]],
                   **server: int) -> tuple[CaptureUpstream, Gateway]:
    up = await start_upstream(respond)
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url), deployment("b", up.base_url),
                                               timeout=GUARD * 10, deadline=GUARD * 20, strategy="failover"), **server))
    return up, gateway


@pytest.mark.parametrize("size", [1 * MiB, 3 * MiB, 20 * MiB])
async def test_large_answers_come_back_whole(start_upstream: StartUpstream, start_gateway: StartGateway,
                                             size: int) -> None:
    body = _big_answer(size)

    async def respond(req: Request) -> Response:
        return Response(200, body)

    up, gateway = await _gateway(start_upstream, start_gateway, respond)
    response = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert response.status == 200, response.body[:300]
    assert len(response.json["choices"][0]["message"]["content"]) == size
    assert up.count == 1
    assert gateway.router.health()["models"]["chat"]["deployments"]["a"]["breaker"]["state"] == "closed"


async def test_a_large_chunked_answer_comes_back_whole(start_upstream: StartUpstream,
                                                       start_gateway: StartGateway) -> None:
    body = _big_answer(3 * MiB)

    async def respond(req: Request) -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 100_000):
                yield body[i:i + 100_000]
        return StreamingResponse(pieces(), content_type="application/json")

    _, gateway = await _gateway(start_upstream, start_gateway, respond)
    response = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert response.status == 200
    assert len(response.json["choices"][0]["message"]["content"]) == 3 * MiB


async def test_large_embeddings_batch(start_upstream: StartUpstream, start_gateway: StartGateway) -> None:
    vectors = [{"object": "embedding", "index": i, "embedding": [0.125] * 1536} for i in range(256)]
    body = orjson.dumps({"object": "list", "data": vectors, "model": "up",
                         "usage": {"prompt_tokens": 256, "total_tokens": 256}})
    assert len(body) > 2 * MiB

    async def respond(req: Request) -> Response:
        return Response(200, body)

    _, gateway = await _gateway(start_upstream, start_gateway, respond)
    response = await request(gateway.port, "POST", "/v1/embeddings", {"model": "chat", "input": ["x"] * 256})
    assert response.status == 200
    assert len(response.json["data"]) == 256


async def test_a_large_stream_comes_back_whole(start_upstream: StartUpstream, start_gateway: StartGateway) -> None:
    piece = "y" * 65536

    async def respond(req: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""})
            for _ in range(48):
                yield chunk_event({"content": piece})
            yield chunk_event({}, "stop")
            yield b"data: [DONE]\n\n"
        return StreamingResponse(events())

    _, gateway = await _gateway(start_upstream, start_gateway, respond)
    response = await request(gateway.port, "POST", "/v1/chat/completions",
                             {"model": "chat", "messages": USER, "stream": True})
    assert response.status == 200
    events = [e for e in response.body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    text = "".join(orjson.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in events[:-1])
    assert len(text) == 48 * 65536


@pytest.mark.parametrize("chunked", [False, True])
async def test_too_large_answer_is_a_502_naming_the_limit_at_once(start_upstream: StartUpstream,
                                                                  start_gateway: StartGateway, chunked: bool) -> None:
    body = _big_answer(5 * MiB)

    async def respond(req: Request) -> Response | StreamingResponse:
        if not chunked:
            return Response(200, body)

        async def pieces() -> AsyncIterator[bytes]:
            for i in range(0, len(body), 256 * 1024):
                yield body[i:i + 256 * 1024]
        return StreamingResponse(pieces(), content_type="application/json")

    up, gateway = await _gateway(start_upstream, start_gateway, respond, max_response_size=4 * MiB)
    response = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert response.status == 502
    error = response.json["error"]
    assert "server.max_response_size" in error["message"]
    assert str(4 * MiB) in error["message"]
    assert error["code"] == "response_too_large"
    assert up.count == 1  # not retried, not failed over
    deployments = gateway.router.health()["models"]["chat"]["deployments"]
    assert all(d["breaker"]["state"] == "closed" for d in deployments.values())
