"""Mid-stream failover, end to end: a stream that breaks off is continued on another deployment.

The upstreams here are purpose-built: each streams one known text piece by
piece, can cut the connection (or fall silent) after ``k`` pieces, and when the
request ends with an assistant message (``prefill``) or an assistant message
plus the continue instruction (``instruct``), streams the rest of the known
text after that prefix. The client (the official ``openai`` SDK, and raw HTTP
for the SSE framing) must receive the complete text exactly once, under one
chunk id, ending in ``[DONE]`` -- or, when continuing is impossible, the
``stream_interrupted`` error event, never a silently truncated answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from stellwerk.routing.operations import CONTINUE_INSTRUCTION
from support import (
    GUARD,
    USER,
    VirtualTimeouts,
    config,
    deployment,
    error_response,
    model,
    read_response_stream,
    request,
)

KNOWN = ("Stellwerk keeps the answer whole: every word arrives once, in order, even when an upstream "
         "breaks off in the middle of a sentence and another one has to finish it.")


def pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


PIECES = pieces(KNOWN)


class Streamer:
    """An OpenAI-compatible streaming upstream of the known text (see the module docstring)."""

    def __init__(self, name: str, *, cut_after: int | None = None, stall_after: int | None = None,
                 cut_after_finish: bool = False, tool_call: bool = False) -> None:
        self.name = name
        self.cut_after = cut_after
        self.stall_after = stall_after
        self.cut_after_finish = cut_after_finish
        self.tool_call = tool_call
        self.requests: list[dict[str, Any]] = []
        self.modes: list[str] = []
        self.stalled = 0
        """Streams stalled for good so far."""
        self.server = HTTPServer(self.handle)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/v1"

    def event(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {"id": f"chatcmpl-{self.name}", "object": "chat.completion.chunk",
                "created": 1700000000 + len(self.name), "model": f"up-{self.name}",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(data) + b"\n\n"

    async def handle(self, req: Request) -> Response | StreamingResponse:
        body = orjson.loads(req.body)
        self.requests.append(body)
        messages = body["messages"]
        prefix, mode = "", "fresh"
        if messages[-1]["role"] == "assistant":
            prefix, mode = messages[-1]["content"], "prefill"
        elif len(messages) >= 2 and messages[-2]["role"] == "assistant" and messages[-1] == {
                "role": "user", "content": CONTINUE_INSTRUCTION}:
            prefix, mode = messages[-2]["content"], "instruct"
        self.modes.append(mode)
        if not body.get("stream"):
            return error_response(400, "this upstream only streams")
        if not KNOWN.startswith(prefix):
            return error_response(400, f"not a prefix of the known text: {prefix!r}")
        usage = (body.get("stream_options") or {}).get("include_usage") is True
        return StreamingResponse(self.events(pieces(KNOWN[len(prefix):]), usage))

    async def events(self, rest: list[str], usage: bool) -> AsyncIterator[bytes]:
        yield self.event({"role": "assistant", "content": ""})
        if self.tool_call:
            yield self.event({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                              "function": {"name": "lookup", "arguments": ""}}]})
            yield self.event({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "sta'}}]})
            raise ConnectionResetError("cut during a tool call")
        for i, piece in enumerate(rest):
            if i == self.cut_after:
                raise ConnectionResetError("cut mid-stream")
            if i == self.stall_after:
                self.stalled += 1
                await asyncio.get_running_loop().create_future()
            yield self.event({"content": piece})
        if self.cut_after is not None and self.cut_after >= len(rest):
            raise ConnectionResetError("cut before the finish chunk")
        yield self.event({}, "stop")
        if self.cut_after_finish:
            raise ConnectionResetError("cut after the finish chunk")
        if usage:
            yield b"data: " + orjson.dumps({"id": f"chatcmpl-{self.name}", "object": "chat.completion.chunk",
                                            "created": 1700000000, "model": f"up-{self.name}", "choices": [],
                                            "usage": {"prompt_tokens": 9, "completion_tokens": len(rest),
                                                      "total_tokens": 9 + len(rest)}}) + b"\n\n"
        yield b"data: [DONE]\n\n"


StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


@pytest.fixture
async def streamers() -> AsyncIterator[Callable[..., Awaitable[Streamer]]]:
    started: list[Streamer] = []

    async def start(name: str, **behaviour: Any) -> Streamer:
        streamer = Streamer(name, **behaviour)
        await streamer.server.start("127.0.0.1", 0)
        started.append(streamer)
        return streamer

    yield start
    for streamer in started:
        await streamer.server.close(grace=0.2)


async def sdk_stream(client: openai.AsyncOpenAI, **fields: Any) -> tuple[str, set[str], list[str | None]]:
    """Text, chunk ids and finish reasons the SDK sees (raises on an error event)."""
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True, **fields)
    text, ids, finishes = "", set(), []
    async for c in stream:
        ids.add(c.id)
        for choice in c.choices:
            text += choice.delta.content or ""
            finishes.append(choice.finish_reason)
    return text, ids, finishes


async def raw_events(gateway: Gateway, **fields: Any) -> list[bytes]:
    response = await request(gateway.port, "POST", "/v1/chat/completions",
                             {"model": "chat", "messages": USER, "stream": True, **fields})
    assert response.status == 200
    return [e.removeprefix(b"data: ") for e in response.body.split(b"\n\n") if e]


def text_of(events: list[bytes]) -> str:
    out = ""
    for e in events:
        if e.startswith(b"{") and b'"choices"' in e:
            for choice in orjson.loads(e)["choices"]:
                out += choice["delta"].get("content") or ""
    return out


async def health(gateway: Gateway) -> dict[str, Any]:
    deployments: dict[str, Any] = (await request(gateway.port, "GET", "/admin/health")).json["models"]["chat"][
        "deployments"]
    return deployments


# -- the answer stays whole -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["prefill", "instruct"])
@pytest.mark.parametrize("cut_after", [0, 1, 9, len(PIECES)])
async def test_a_cut_stream_is_finished_elsewhere_exactly_once(
        mode: str, cut_after: int, streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway,
        make_client: MakeClient) -> None:
    first = await streamers("first", cut_after=cut_after)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url, resume=mode))))
    text, ids, finishes = await sdk_stream(make_client(gateway), max_tokens=500,
                                           stream_options={"include_usage": True})
    assert text == KNOWN
    assert ids == {"chatcmpl-first"}
    assert finishes.count("stop") == 1 and finishes[-1] == "stop"

    continuation = second.requests[-1]
    partial = "".join(PIECES[:cut_after])
    if not partial:  # nothing reached the client: the request is simply asked again
        assert second.modes == ["fresh"] and continuation["messages"] == USER
        return
    assert second.modes == [mode]
    if mode == "prefill":
        assert continuation["messages"][-1] == {"role": "assistant", "content": partial}
    else:
        assert continuation["messages"][-2:] == [{"role": "assistant", "content": partial},
                                                 {"role": "user", "content": CONTINUE_INSTRUCTION}]
    assert continuation["messages"][0] == USER[0]
    assert continuation["max_tokens"] <= 500 and (continuation["max_tokens"] < 500 or not partial)

    events = await raw_events(gateway)
    assert events[-1] == b"[DONE]" and not any(b'"error"' in e for e in events)
    assert text_of(events) == KNOWN
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())


async def test_a_stalled_stream_is_finished_elsewhere_after_the_idle_timeout(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway, make_client: MakeClient,
        virtual_timeouts: Callable[[dict[str, Callable[[], int]]], VirtualTimeouts]) -> None:
    first = await streamers("first", stall_after=4)
    second = await streamers("second")
    # the idle timeout passes once the first stream stalled; no gap between two chunks of a loaded machine is one
    transport = virtual_timeouts({first.base_url: lambda: first.stalled})
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url), idle_timeout=0.2)),
                                  transport=transport)
    text, ids, _ = await sdk_stream(make_client(gateway))
    assert (text, ids) == (KNOWN, {"chatcmpl-first"})
    assert transport.timeouts == [0.2] and first.stalled == 1


async def test_a_stream_broken_twice_is_finished_by_a_third_deployment(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway, make_client: MakeClient) -> None:
    first = await streamers("first", cut_after=3)
    second = await streamers("second", cut_after=5)
    third = await streamers("third")
    gateway = await start_gateway(config(model(
        "chat", deployment("first", first.base_url), deployment("second", second.base_url, resume="prefill"),
        deployment("third", third.base_url, resume="prefill"))))
    text, ids, _ = await sdk_stream(make_client(gateway))
    assert (text, ids) == (KNOWN, {"chatcmpl-first"})
    assert third.requests[-1]["messages"][-1] == {"role": "assistant", "content": "".join(PIECES[:8])}


async def test_an_answer_complete_but_for_its_end_marker_ends_in_done(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway) -> None:
    """finish_reason arrived, then the connection was cut before [DONE]: nothing of the answer is missing."""
    first = await streamers("first", cut_after_finish=True)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url))))
    events = await raw_events(gateway)
    assert text_of(events) == KNOWN
    assert not any(b"stream_interrupted" in e for e in events), events[-1]
    assert events[-1] == b"[DONE]"


# -- when continuing is impossible: an error event, never a truncated [DONE] ------------------------------------------
def assert_interrupted(events: list[bytes]) -> None:
    assert b"[DONE]" not in events
    error = orjson.loads(events[-1])["error"]
    assert error["code"] == "stream_interrupted"


async def test_a_broken_tool_call_stream_ends_with_stream_interrupted(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway, make_client: MakeClient) -> None:
    first = await streamers("first", tool_call=True)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url))))
    assert_interrupted(await raw_events(gateway))
    with pytest.raises(openai.APIError, match="broke off"):
        await sdk_stream(make_client(gateway))
    assert second.requests == []  # a half-made tool call is never continued


async def test_resume_streams_false_ends_with_stream_interrupted(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway, make_client: MakeClient) -> None:
    first = await streamers("first", cut_after=4)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url), resume_streams=False)))
    events = await raw_events(gateway)
    assert_interrupted(events)
    assert text_of(events) == "".join(PIECES[:4])
    with pytest.raises(openai.APIError):
        await sdk_stream(make_client(gateway))
    assert second.requests == []


async def test_after_max_resumes_the_stream_ends_with_stream_interrupted(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway) -> None:
    first = await streamers("first", cut_after=2)
    second = await streamers("second", cut_after=2)
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url, resume="prefill"),
                                               deployment("second", second.base_url, resume="prefill"),
                                               retries=5, backoff={"base": 0.001, "cap": 0.001})))
    events = await raw_events(gateway)
    assert_interrupted(events)
    text = text_of(events)
    assert KNOWN.startswith(text) and len(pieces(text)) == 8  # 1 + MAX_RESUMES (3) streams of 2 pieces, no repeats
    assert len(first.requests) + len(second.requests) == 4


async def test_a_deployment_with_resume_off_is_not_used_and_not_blamed(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway) -> None:
    """Passing over a deployment configured ``resume: off`` says nothing about its health."""
    first = await streamers("first", cut_after=4)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url, resume="off"),
                                               breaker={"consecutive_failures": 3})))
    for _ in range(3):
        events = await raw_events(gateway)
        if b'"chatcmpl-first"' in events[0]:
            assert_interrupted(events)  # only "first" could continue it, and it keeps breaking
        else:  # "first" was ejected meanwhile: "second" answers from the start
            assert events[-1] == b"[DONE]" and text_of(events) == KNOWN
    assert set(second.modes) <= {"fresh"}  # never asked to continue
    state = (await health(gateway))["second"]
    assert state["failures"] == 0 and state["breaker"]["state"] == "closed", state


async def test_concurrent_cut_streams_all_complete_and_release_their_slots(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway, make_client: MakeClient) -> None:
    first = await streamers("first", cut_after=6)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url, resume="prefill"),
                                               breaker={"consecutive_failures": 1000}, retry_budget={"ratio": 1})))
    client = make_client(gateway)
    results = await asyncio.wait_for(asyncio.gather(*(sdk_stream(client) for _ in range(30))), GUARD * 2)
    assert all(text == KNOWN and ids == {"chatcmpl-first"} for text, ids, _ in results)
    assert len(first.requests) == len(second.requests) == 30
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())


async def test_a_mass_cut_resumes_within_the_budget_and_never_truncates(
        streamers: Callable[..., Awaitable[Streamer]], start_gateway: StartGateway) -> None:
    """40 streams cut at once (a provider crash): every stream ends either complete with [DONE] or with
    stream_interrupted, never truncated; resumes draw from the retry budget, whose reserve (10) at least
    is always available."""
    first = await streamers("first", cut_after=6)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url, resume="prefill"),
                                               breaker={"consecutive_failures": 1000})))
    runs = await asyncio.wait_for(asyncio.gather(*(raw_events(gateway) for _ in range(40))), GUARD * 2)
    complete = [e for e in runs if e[-1] == b"[DONE]"]
    for events in runs:
        if events[-1] == b"[DONE]":
            assert text_of(events) == KNOWN
        else:
            assert_interrupted(events)
            assert text_of(events) == "".join(PIECES[:6])
    assert 10 <= len(complete) == len(second.requests)  # one continuation per resumed stream, no more
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())


async def test_a_responses_api_stream_is_resumed_too(streamers: Callable[..., Awaitable[Streamer]],
                                                     start_gateway: StartGateway, make_client: MakeClient) -> None:
    """``/v1/responses`` runs on the chat pipeline: a cut upstream is finished elsewhere, and the Responses
    event stream carries the whole text once, ending in ``response.completed``."""
    first = await streamers("first", cut_after=5)
    second = await streamers("second")
    gateway = await start_gateway(config(model("chat", deployment("first", first.base_url),
                                               deployment("second", second.base_url, resume="prefill"))))
    client = make_client(gateway)
    kinds, deltas, final = await read_response_stream(client, model="chat", input="Hello there")
    assert "".join(deltas) == KNOWN and final.output_text == KNOWN
    assert kinds[-1] == "response.completed" and "error" not in kinds
    assert second.modes == ["prefill"]
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())
