"""The pipeline's middleware chain: its fixed order, and middlewares that answer without calling ``next``.

Order: registered in scrambled dict order, they still run auth → limits → cache → tracing → route and unwind in
reverse. Answering early: an error (the client gets its status in OpenAI's or Anthropic's error shape), a
``ChatResult`` for a plain call, a ``ReplayStream`` for a streamed one (served as SSE by both front doors). The
deployment behind those early answers is a closed port, and the router's upstream is never asked.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from resilience_support import FakeTransport, ok

from stellwerk import ChatResult, Event, RequestFinished, Router, StellwerkError, load_dict
from stellwerk.gateway import GatewayApp
from stellwerk.gateway.errors import http_layer_error
from stellwerk.http.server import HTTPServer
from stellwerk.pipeline import STAGES, Call, Handler, ReplayStream, Reply, compose
from stellwerk.pipeline.chain import Link, Stage
from stellwerk.usage import Usage
from support import USER, closed_port_url, config, deployment, model, request

Serve = Callable[[Router], Awaitable[int]]


class KeyRejected(StellwerkError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(router)``: the gateway's app over ``router`` on an ephemeral port; returns the port."""
    running: list[tuple[HTTPServer, Router]] = []

    async def start(router: Router) -> int:
        server = HTTPServer(GatewayApp(router), error_body=http_layer_error)
        await server.start("127.0.0.1", 0)
        running.append((server, router))
        return server.port

    yield start
    for server, router in running:
        await server.close(grace=0.5)
        await router.aclose()


def unreachable_router(middlewares: dict[str, list[Any]], listeners: list[Any] | None = None) -> Router:
    """A router whose only deployment is a closed port: any answer must come from a middleware."""
    return Router(load_dict(config(model("chat", deployment("a", closed_port_url()))), env={}),
                  middlewares=middlewares, listeners=listeners or [])


def finished(into: list[RequestFinished]) -> Callable[[Event], None]:
    return lambda event: into.append(event) if isinstance(event, RequestFinished) else None


# -- order ---------------------------------------------------------------------------------------------------------
async def test_middlewares_run_in_stage_order_and_unwind_in_reverse(fake_router: Callable[..., Router],
                                                                   transport: FakeTransport) -> None:
    log: list[str] = []

    def recording(name: str) -> Any:
        async def middleware(call: Call, next_handler: Handler) -> Reply:
            log.append(f"{name}>")
            reply = await next_handler(call)
            log.append(f"<{name}")
            return reply
        return middleware

    async def upstream(call: Any, clock: Any) -> Any:
        log.append("route")
        return await ok()(call, clock)

    transport.script("a", upstream)
    scrambled = {"tracing": [recording("tracing")], "cache": [recording("cache1"), recording("cache2")],
                 "auth": [recording("auth")], "limits": [recording("limits")]}
    router = fake_router({"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "up-a",
                                                             "api_base": "http://a.fake/v1"}]}, middlewares=scrambled)
    assert (await router.chat(model="chat", messages=USER)).text == "fine"
    assert STAGES == ("auth", "limits", "cache", "tracing")
    assert log == ["auth>", "limits>", "cache1>", "cache2>", "tracing>", "route",
                   "<tracing", "<cache2", "<cache1", "<limits", "<auth"]


class Recording(Stage):
    """A compiled-style stage (its links call ``handle`` natively) that records its way in and out."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    async def handle(self, call: Call, after: Link, /) -> Reply:
        self.log.append(f"{self.name}>")
        reply = await after.handle(call)
        self.log.append(f"<{self.name}")
        return reply


async def test_stages_and_plain_middlewares_run_in_one_order() -> None:
    log: list[str] = []

    async def plain(call: Call, next_handler: Handler) -> Reply:
        log.append("plain>")
        reply = await next_handler(call)
        log.append("<plain")
        return reply

    async def route(call: Call) -> Reply:
        log.append("route")
        return reply_marker

    reply_marker: Any = object()
    pipeline = compose(route, {"auth": [Recording("a", log), plain], "limits": [Recording("l", log)],
                               "tracing": [plain]})
    assert await pipeline(call_marker) is reply_marker
    assert log == ["a>", "plain>", "l>", "plain>", "route", "<plain", "<l", "<plain", "<a"]
    log.clear()  # a stage used outside a pipeline, as any middleware
    assert await Recording("alone", log)(call_marker, route) is reply_marker
    assert log == ["alone>", "route", "<alone"]


call_marker: Any = object()


async def test_an_unknown_stage_is_refused() -> None:
    async def route(call: Call) -> Reply:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="unknown pipeline stage"):
        compose(route, {"auth": [], "routing": []})
    with pytest.raises(ValueError, match="authz"):
        unreachable_router({"authz": []})


def test_without_middlewares_the_pipeline_is_the_route_handler_itself() -> None:
    async def route(call: Call) -> Reply:
        raise AssertionError("not called")

    assert compose(route) is route
    assert compose(route, {}) is route
    assert compose(route, {"auth": [], "cache": []}) is route


# -- answering without next ------------------------------------------------------------------------------------------
async def reject_without_key(call: Call, next_handler: Handler) -> Reply:
    if call.headers.get("authorization") != "Bearer good":
        raise KeyRejected("Invalid API key.")
    return await next_handler(call)


async def test_an_error_raised_by_a_middleware_reaches_the_client_in_openai_shape(serve: Serve) -> None:
    records: list[RequestFinished] = []
    router = unreachable_router({"auth": [reject_without_key]}, [finished(records)])
    port = await serve(router)
    body = {"model": "chat", "messages": USER}
    response = await request(port, "POST", "/v1/chat/completions", body, {"x-request-id": "rid-401"})
    assert response.status == 401
    assert response.json == {"error": {"message": "Invalid API key.", "type": "authentication_error", "param": None,
                                       "code": "invalid_api_key"}}
    assert response.headers["x-request-id"] == "rid-401"
    anthropic = await request(port, "POST", "/v1/messages", {**body, "max_tokens": 10})
    assert anthropic.status == 401
    assert anthropic.json["type"] == "error" and anthropic.json["error"]["message"] == "Invalid API key."
    assert [(r.status, r.deployment, r.attempts) for r in records] == [(401, None, ())] * 2


async def test_a_middleware_can_answer_a_plain_call_with_a_result(serve: Serve) -> None:
    data = {"id": "chatcmpl-mw", "object": "chat.completion", "created": 1, "model": "chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the cache"},
                         "finish_reason": "stop"}]}

    async def cache(call: Call, next_handler: Handler) -> Reply:
        usage = Usage(4, 3)
        record = call.finished(call.started, status=200, deployment="cache", attempts=(), usage=usage, cost=0.0)
        return ChatResult(data, None, call.model, "cache", 0, usage, 0.0, 0.0, call.request_id, "cache: hit", record)

    records: list[RequestFinished] = []
    router = unreachable_router({"cache": [cache]}, [finished(records)])
    result = await router.chat(model="chat", messages=USER)
    assert (result.text, result.deployment, result.route) == ("from the cache", "cache", "cache: hit")
    port = await serve(router)
    response = await request(port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert response.status == 200 and response.json == data
    assert (response.headers["x-stellwerk-deployment"], response.headers["x-stellwerk-route"]) == ("cache", "cache: hit")
    assert [(r.status, r.deployment) for r in records] == [(200, "cache")] * 2


CHUNKS = [
    {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": 1, "model": "chat",
     "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": 1, "model": "chat",
     "choices": [{"index": 0, "delta": {"content": "Replayed "}, "finish_reason": None}]},
    {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": 1, "model": "chat",
     "choices": [{"index": 0, "delta": {"content": "answer"}, "finish_reason": None}]},
    {"id": "chatcmpl-replay", "object": "chat.completion.chunk", "created": 1, "model": "chat",
     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
]


async def replay(call: Call, next_handler: Handler) -> Reply:
    assert call.stream
    return ReplayStream(CHUNKS, model=call.model, deployment="cache", request_id=call.request_id, usage=Usage(5, 2),
                        started=call.started, clock=time.monotonic, route="cache: replay")


async def test_a_middleware_can_answer_a_streamed_call_with_a_replay_over_sse(serve: Serve) -> None:
    records: list[RequestFinished] = []
    port = await serve(unreachable_router({"cache": [replay]}, [finished(records)]))
    response = await request(port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER, "stream": True})
    assert response.status == 200
    assert response.headers["x-stellwerk-deployment"] == "cache"
    assert response.headers["x-stellwerk-route"] == "cache: replay"
    events = [e for e in response.body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    assert [orjson.loads(e.removeprefix(b"data: ")) for e in events[:-1]] == CHUNKS
    assert [(r.status, r.deployment, r.stream) for r in records] == [(200, "cache", True)]


async def test_a_replay_is_served_by_the_anthropic_front_door(serve: Serve) -> None:
    records: list[RequestFinished] = []
    port = await serve(unreachable_router({"cache": [replay]}, [finished(records)]))
    response = await request(port, "POST", "/v1/messages",
                             {"model": "chat", "max_tokens": 50, "stream": True, "messages": USER})
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "cache"
    events = [orjson.loads(block.split(b"data: ", 1)[1]) for block in response.body.split(b"\n\n") if block]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "error" not in kinds
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == "Replayed answer"
    [delta] = [e for e in events if e["type"] == "message_delta"]
    assert delta["usage"]["output_tokens"] == 2
    assert [(r.status, r.deployment) for r in records] == [(200, "cache")]


async def test_a_result_built_without_a_record_still_finishes_the_call() -> None:
    async def cache(call: Call, next_handler: Handler) -> Reply:
        return ChatResult({"choices": []}, None, call.model, "cache", 0, Usage(), 0.0, 0.0, call.request_id)

    records: list[RequestFinished] = []
    router = unreachable_router({"cache": [cache]}, [finished(records)])
    try:
        await router.chat(model="chat", messages=USER)
    finally:
        await router.aclose()
    assert [(r.status, r.deployment) for r in records] == [(200, "cache")]
