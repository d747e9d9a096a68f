"""Upstream failures through a running gateway: failover, timeouts, broken streams, secrets, client disconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.sim import SimProvider
from support import (
    GUARD,
    USER,
    CaptureUpstream,
    RawConnection,
    RawResponse,
    VirtualTimeouts,
    chunk_event,
    closed_port_url,
    completion_body,
    config,
    deployment,
    error_response,
    http_request,
    model,
    request,
)

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]
VirtualTimeoutsFactory = Callable[[dict[str, Callable[[], int]]], VirtualTimeouts]

CHAT = {"model": "chat", "messages": USER}


def sse_events(body: bytes) -> list[bytes]:
    return [event.removeprefix(b"data: ") for event in body.split(b"\n\n") if event]


async def chat(gateway: Gateway, **fields: Any) -> RawResponse:
    return await request(gateway.port, "POST", "/v1/chat/completions", {**CHAT, **fields})


# -- failover ----------------------------------------------------------------------------------------------------------
async def test_connection_refused_fails_over(start_sim: StartSim, start_gateway: StartGateway,
                                             make_client: MakeClient) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("down", closed_port_url()),
                                               deployment("up", sim.base_url), retries=0)))
    client = make_client(gateway)
    raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-stellwerk-deployment"] == "up"
    assert raw.headers["x-stellwerk-attempts"] == "2"
    raw_stream = await client.chat.completions.with_raw_response.create(model="chat", messages=USER, stream=True)
    assert raw_stream.headers["x-stellwerk-attempts"] == "2"
    assert [c async for c in raw_stream.parse()]
    raw_embed = await client.embeddings.with_raw_response.create(model="chat", input="x")
    assert raw_embed.headers["x-stellwerk-deployment"] == "up"


async def test_server_errors_fail_over_then_repeat(start_sim: StartSim, start_upstream: StartUpstream,
                                                   start_gateway: StartGateway) -> None:
    """A 5xx moves on to the next deployment at once; repeats on one deployment come after, up to ``retries``."""
    bad = await start_sim(error_rate=1.0, error_statuses=(500,))
    good = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("bad", bad.base_url),
                                               deployment("good", good.base_url), retries=2)))
    response = await chat(gateway)
    assert response.status == 200
    assert response.headers["x-stellwerk-deployment"] == "good"
    assert response.headers["x-stellwerk-attempts"] == "2"
    assert (bad.stats.requests, good.stats.requests) == (1, 1)
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["failovers"] == 1
    assert stats["deployments"]["bad"]["failures"] == 1

    calls = 0

    async def twice_then_ok(req: Request) -> Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return error_response(503, "overloaded", type_="server_error")
        return Response(200, completion_body())

    only = await start_upstream(twice_then_ok)
    gateway = await start_gateway(config(model("chat", deployment("only", only.base_url), retries=2,
                                               backoff={"base": 0.01})))
    response = await chat(gateway)
    assert response.status == 200
    assert response.headers["x-stellwerk-attempts"] == "3"
    assert only.count == 3


async def test_upstream_400_is_returned_not_failed_over(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                        make_client: MakeClient) -> None:
    async def reject(req: Request) -> Response:
        return error_response(400, "Invalid 'logit_bias': token 99999999 does not exist.", code="invalid_value")

    first = await start_upstream(reject)
    second = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", first.base_url),
                                               deployment("b", second.base_url), retries=3)))
    client = make_client(gateway)
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(model="chat", messages=USER, logit_bias={"99999999": 1})
    assert "token 99999999 does not exist" in info.value.message
    assert info.value.code == "invalid_value"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="chat", messages=USER, stream=True)
    assert first.count == 2 and second.count == 0


async def test_bad_key_moves_on(start_sim: StartSim, start_gateway: StartGateway) -> None:
    locked = await start_sim(api_key="sk-the-real-key-0000000000")
    good = await start_sim()
    gateway = await start_gateway(config(model(
        "chat", deployment("locked", locked.base_url, api_key="sk-a-stale-key-111111111"),
        deployment("good", good.base_url), retries=2)))
    response = await chat(gateway)
    assert response.status == 200
    assert response.headers["x-stellwerk-deployment"] == "good"
    assert response.headers["x-stellwerk-attempts"] == "2"
    assert locked.stats.invalid == 1  # a 401 is not retried on the same deployment


async def test_hang_times_out_and_fails_over(start_sim: StartSim, start_gateway: StartGateway) -> None:
    hung = await start_sim(hang_rate=1.0)
    good = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("hung", hung.base_url, timeout=0.3),
                                               deployment("good", good.base_url), retries=0)))
    response = await chat(gateway)
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "good"
    stream = await chat(gateway, stream=True)
    assert stream.status == 200 and stream.headers["x-stellwerk-deployment"] == "good"
    assert sse_events(stream.body)[-1] == b"[DONE]"
    assert hung.stats.hang == 2


async def test_malformed_upstream_body_fails_over(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(malformed_rate=1.0)
    good = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("broken", broken.base_url),
                                               deployment("good", good.base_url), retries=1)))
    response = await chat(gateway)
    assert response.status == 200
    assert response.headers["x-stellwerk-deployment"] == "good"
    assert response.headers["x-stellwerk-attempts"] == "2"
    assert broken.stats.malformed == 1


async def test_rate_limited_everywhere_is_429(start_sim: StartSim, start_gateway: StartGateway,
                                              make_client: MakeClient) -> None:
    sims = [await start_sim(rate_limit_rate=1.0, retry_after_s=1) for _ in range(2)]
    gateway = await start_gateway(config(model("chat", *(deployment(f"d{i}", s.base_url) for i, s in enumerate(sims)),
                                               retries=0)))
    client = make_client(gateway)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model="chat", messages=USER)
    assert info.value.status_code == 429
    assert "retry-after" in info.value.response.headers
    assert info.value.response.headers["x-stellwerk-attempts"] == "2"


@pytest.mark.parametrize(("kind", "status"), [("error", 502), ("refused", 503), ("hang", 504)])
async def test_all_deployments_failing(kind: str, status: int, start_sim: StartSim, start_gateway: StartGateway,
                                       make_client: MakeClient, virtual_timeouts: VirtualTimeoutsFactory) -> None:
    options: dict[str, Any] = {}
    if kind == "refused":
        bases = [closed_port_url(), closed_port_url()]
    elif kind == "hang":  # each attempt times out once the sim holds it (not after a time a loaded machine can miss)
        sims = [await start_sim(hang_rate=1.0) for _ in range(2)]
        bases = [sim.base_url for sim in sims]
        options["transport"] = virtual_timeouts({sim.base_url: lambda sim=sim: sim.stats.hang for sim in sims})
    else:
        bases = [(await start_sim(error_rate=1.0, error_statuses=(status,))).base_url for status in (500, 503)]
    gateway = await start_gateway(config(model("chat", deployment("first", bases[0]), deployment("second", bases[1]),
                                               retries=1, timeout=GUARD)), **options)
    response = await chat(gateway)
    assert response.status == status
    error = response.json["error"]
    assert (error["type"], error["code"]) == ("upstream_error", "upstream_unavailable")
    assert "after 4 attempt(s)" in error["message"]
    assert error["message"].count("first: ") == 2 and error["message"].count("second: ") == 2
    assert response.headers["x-stellwerk-attempts"] == "4"
    with pytest.raises(openai.InternalServerError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=USER, stream=True)
    assert info.value.status_code == status
    if kind == "hang":
        assert len(options["transport"].timeouts) == 8 and sum(sim.stats.hang for sim in sims) == 8


# -- streams -----------------------------------------------------------------------------------------------------------
async def _die_before_first_event(req: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        raise ConnectionResetError("closed before the first event")
        yield b""  # pragma: no cover

    return StreamingResponse(chunks())


async def _garbage_before_first_event(req: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: {this is not json\n\n"

    return StreamingResponse(chunks())


@pytest.mark.parametrize("broken", [_die_before_first_event, _garbage_before_first_event])
async def test_stream_broken_before_first_chunk_fails_over_transparently(
    broken: Callable[[Request], Awaitable[StreamingResponse]], start_upstream: StartUpstream,
    start_gateway: StartGateway, make_client: MakeClient
) -> None:
    first = await start_upstream(broken)
    second = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", first.base_url),
                                               deployment("b", second.base_url), retries=0)))
    raw = await make_client(gateway).chat.completions.with_raw_response.create(model="chat", messages=USER,
                                                                               stream=True)
    assert raw.headers["x-stellwerk-deployment"] == "b"
    assert raw.headers["x-stellwerk-attempts"] == "2"
    chunks = [c async for c in raw.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from upstream"
    assert first.count == 1 and second.count == 1


async def test_stream_broken_mid_way_ends_with_an_error_event(start_sim: StartSim, start_gateway: StartGateway,
                                                              make_client: MakeClient) -> None:
    dropping = await start_sim(drop_mid_stream_rate=1.0, output_tokens=30)
    spare = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("dropping", dropping.base_url),
                                               deployment("spare", spare.base_url), resume_streams=False)))
    response = await chat(gateway, stream=True)
    assert response.status == 200
    events = sse_events(response.body)
    assert b"[DONE]" not in events
    final = orjson.loads(events[-1])
    assert final["error"]["code"] == "stream_interrupted"
    assert final["error"]["type"] == "upstream_error"
    assert "dropping" in final["error"]["message"]
    assert all("choices" in orjson.loads(e) for e in events[:-1])
    # The official SDK raises instead of returning a truncated answer.
    stream = await make_client(gateway).chat.completions.create(model="chat", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            received.append(chunk)
    assert "broke off" in info.value.message
    assert not any(c.choices and c.choices[0].finish_reason for c in received)
    assert spare.stats.requests == 0
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["errors"] == 2


async def test_stream_broken_mid_way_is_resumed_elsewhere(start_sim: StartSim, start_gateway: StartGateway,
                                                          make_client: MakeClient) -> None:
    dropping = await start_sim(drop_mid_stream_rate=1.0, output_tokens=30)
    spare = await start_sim(output_tokens=5)
    gateway = await start_gateway(config(model("chat", deployment("dropping", dropping.base_url),
                                               deployment("spare", spare.base_url))))
    stream = await make_client(gateway).chat.completions.create(model="chat", messages=USER, stream=True,
                                                                stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]  # no APIError: the answer was continued on "spare"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].usage is not None
    assert spare.stats.requests == 1 and dropping.stats.drop == 1


async def stream_released(gateway: Gateway, release: asyncio.Event) -> list[bytes]:
    """Stream a chat; once the client has the first chunk, ``release`` the upstream's next move. All events."""
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("POST", "/v1/chat/completions", orjson.dumps({**CHAT, "stream": True})))
        head = await conn.read_head()
        assert head.status == 200
        parts = [await conn.read_chunk() or b""]
        release.set()
        while (chunk := await conn.read_chunk()) is not None:
            parts.append(chunk)
    return sse_events(b"".join(parts))


def first_chunks_then(release: asyncio.Event, last: Callable[[Request], bytes]) -> Callable[[Request],
                                                                                            Awaitable[StreamingResponse]]:
    """A stream: two chunks, then (once released) the event ``last(request)``."""
    async def respond(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""}) + chunk_event({"content": "Hal"})
            await release.wait()
            yield last(req)

        return StreamingResponse(chunks())

    return respond


async def test_stream_error_event_from_upstream_mid_way(start_upstream: StartUpstream,
                                                        start_gateway: StartGateway) -> None:
    release = asyncio.Event()
    error = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    up = await start_upstream(first_chunks_then(release, lambda req: error))
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url), resume_streams=False)))
    events = await stream_released(gateway, release)
    assert orjson.loads(events[1])["choices"][0]["delta"]["content"] == "Hal"
    final = orjson.loads(events[-1])["error"]
    assert final["code"] == "stream_interrupted" and "The server had an error" in final["message"]


# -- secrets -----------------------------------------------------------------------------------------------------------
KEY_A = "sk-proj-SECRETaaaa0123456789abcdefABCDEF"
KEY_B = "plainSecretValueNotKeyShapedBBBB"
HEADER_SECRET = "org-header-secret-CCCC-0000"
SECRETS = (KEY_A, KEY_B, HEADER_SECRET)


def _echo_credentials(status: int) -> Callable[[Request], Awaitable[Response]]:
    async def respond(req: Request) -> Response:
        told = f"auth={req.headers.get('authorization')} token={req.headers.get('x-upstream-token')}"
        return error_response(status, f"Rejected credentials: {told}", type_="server_error")

    return respond


async def test_secrets_never_leave_the_gateway(start_upstream: StartUpstream, start_sim: StartSim,
                                               start_gateway: StartGateway, make_client: MakeClient,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo_500 = await start_upstream(_echo_credentials(500))
    echo_401 = await start_upstream(_echo_credentials(401))
    locked = await start_sim(api_key="sk-what-the-sim-wants-000000")
    gateway = await start_gateway(config(model(
        "chat",
        deployment("echo500", echo_500.base_url, api_key="${KEY_A}", headers={"X-Upstream-Token": "${HEADER_SECRET}"}),
        deployment("echo401", echo_401.base_url, api_key="${KEY_B}"),
        deployment("locked", locked.base_url, api_key="${KEY_A}"),
        deployment("refused", closed_port_url(), api_key="${KEY_B}"),
        retries=1,
    )), env={"KEY_A": KEY_A, "KEY_B": KEY_B, "HEADER_SECRET": HEADER_SECRET})
    answers: list[str] = []
    response = await chat(gateway)
    assert response.status == 502
    answers.append(response.raw_head.decode("latin-1") + response.body.decode())
    stream = await chat(gateway, stream=True)
    answers.append(stream.raw_head.decode("latin-1") + stream.body.decode())
    with pytest.raises(openai.InternalServerError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=USER)
    answers.append(str(info.value) + str(info.value.body))
    answers.append((await request(gateway.port, "GET", "/admin/stats")).body.decode())
    # The upstreams really were sent the secrets...
    assert echo_500.last.headers["authorization"] == f"Bearer {KEY_A}"
    assert echo_500.last.headers["x-upstream-token"] == HEADER_SECRET
    assert echo_401.last.headers["authorization"] == f"Bearer {KEY_B}"
    # ...and every attempt is listed, but no secret is anywhere in answers or logs.
    message = response.json["error"]["message"]
    for name in ("echo500", "echo401", "locked", "refused"):
        assert f"{name}: " in message
    assert "Rejected credentials" in message
    for secret in SECRETS:
        for answer in answers:
            assert secret not in answer
        assert secret not in caplog.text


async def test_secrets_redacted_from_client_errors_and_stream_errors(start_upstream: StartUpstream,
                                                                     start_gateway: StartGateway,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    release = asyncio.Event()

    def told(req: Request) -> str:
        return f"{req.headers.get('authorization')} / {req.headers.get('x-upstream-token')}"

    def error_event(req: Request) -> bytes:
        return b"data: " + orjson.dumps({"error": {"message": f"bad key {told(req)}"}}) + b"\n\n"

    streaming = first_chunks_then(release, error_event)

    async def respond(req: Request) -> Response | StreamingResponse:
        if orjson.loads(req.body).get("stream"):
            return await streaming(req)
        return error_response(400, f"Invalid request, and by the way your key is {told(req)}")

    up = await start_upstream(respond)
    gateway = await start_gateway(config(model("chat", deployment(
        "a", up.base_url, api_key=KEY_B, headers={"X-Upstream-Token": HEADER_SECRET}), resume_streams=False)))
    bad = await chat(gateway)
    assert bad.status == 400 and "Invalid request" in bad.json["error"]["message"]
    events = await stream_released(gateway, release)
    final = orjson.loads(events[-1])["error"]
    assert final["code"] == "stream_interrupted" and "bad key" in final["message"]
    assert up.last.headers["authorization"] == f"Bearer {KEY_B}"
    for secret in (KEY_B, HEADER_SECRET):
        assert secret not in bad.body.decode() + b"".join(events).decode()
        assert secret not in caplog.text


# -- client disconnects ------------------------------------------------------------------------------------------------
async def test_client_disconnect_mid_stream_cancels_the_upstream_request(start_upstream: StartUpstream,
                                                                         start_gateway: StartGateway) -> None:
    up = await start_upstream()
    up.respond = up.stream_then_hang
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    conn = await RawConnection.open(gateway.port)
    try:
        await conn.send(http_request("POST", "/v1/chat/completions", orjson.dumps({**CHAT, "stream": True})))
        head = await conn.read_head()
        assert head.status == 200
        first = await conn.read_chunk()
        assert first is not None and b"chat.completion.chunk" in first
        async with asyncio.timeout(GUARD):
            await up.started.wait()
    finally:
        await conn.close()
    async with asyncio.timeout(GUARD):
        await up.cancelled.wait()  # the upstream saw its connection closed
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["requests"] == 1


async def test_client_disconnect_while_waiting_cancels_the_upstream_request(start_upstream: StartUpstream,
                                                                            start_gateway: StartGateway) -> None:
    up = await start_upstream()
    up.respond = up.hang_forever
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    conn = await RawConnection.open(gateway.port)
    try:
        await conn.send(http_request("POST", "/v1/chat/completions", orjson.dumps(CHAT)))
        async with asyncio.timeout(GUARD):
            await up.started.wait()
    finally:
        await conn.close()
    async with asyncio.timeout(GUARD):
        await up.cancelled.wait()
    assert up.count == 1  # and it was not retried elsewhere on behalf of a client that left


# -- streams that end badly without breaking the connection -------------------------------------------------------------
def _stream_of(events: list[bytes], *, hang: CaptureUpstream | None = None) -> Callable[[Request], Awaitable[StreamingResponse]]:
    async def respond(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for event in events:
                yield event
            if hang is not None:
                hang.started.set()
                try:
                    await asyncio.get_running_loop().create_future()
                finally:
                    hang.cancelled.set()

        return StreamingResponse(chunks())

    return respond


async def test_stream_ending_early_without_finish_or_done_is_not_a_silent_truncation(
    start_upstream: StartUpstream, start_gateway: StartGateway
) -> None:
    up = await start_upstream(_stream_of([chunk_event({"role": "assistant", "content": ""}),
                                          chunk_event({"content": "The answer is"})]))  # then a clean end of body
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    events = sse_events((await chat(gateway, stream=True)).body)
    assert b"[DONE]" not in events
    assert orjson.loads(events[-1])["error"]["code"] == "stream_interrupted"


async def test_stream_with_finish_but_without_done_is_complete(start_upstream: StartUpstream,
                                                               start_gateway: StartGateway) -> None:
    up = await start_upstream(_stream_of([chunk_event({"role": "assistant", "content": ""}),
                                          chunk_event({"content": "Done."}), chunk_event({}, "stop")]))
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    events = sse_events((await chat(gateway, stream=True)).body)
    assert events[-1] == b"[DONE]"
    assert orjson.loads(events[-2])["choices"][0]["finish_reason"] == "stop"


async def test_stream_stalling_mid_way_times_out_with_an_error_event(start_upstream: StartUpstream,
                                                                     start_gateway: StartGateway) -> None:
    up = await start_upstream()
    up.respond = _stream_of([chunk_event({"role": "assistant", "content": ""}), chunk_event({"content": "Hel"})],
                            hang=up)
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url), idle_timeout=0.2)))
    events = sse_events((await chat(gateway, stream=True)).body)
    assert orjson.loads(events[-1])["error"]["code"] == "stream_interrupted"
    async with asyncio.timeout(GUARD):
        await up.cancelled.wait()  # the stalled upstream connection was closed


async def test_deployment_timeout_overrides_the_model_timeout(start_sim: StartSim, start_gateway: StartGateway) -> None:
    slow = await start_sim(latency_ms=GUARD * 1000)
    good = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("slow", slow.base_url, timeout=0.1),
                                               deployment("good", good.base_url), retries=0, timeout=GUARD * 2)))
    response = await chat(gateway)
    assert response.status == 200 and response.headers["x-stellwerk-deployment"] == "good"


async def test_concurrent_requests_with_a_flaky_deployment_all_succeed(start_sim: StartSim,
                                                                       start_gateway: StartGateway,
                                                                       make_client: MakeClient) -> None:
    flaky = await start_sim(error_rate=0.3, rate_limit_rate=0.1, drop_mid_stream_rate=0.1, seed=7)
    steady = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("flaky", flaky.base_url),
                                               deployment("steady", steady.base_url), retries=1)))
    client = make_client(gateway)

    async def one(i: int) -> str:
        completion = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"#{i}"}])
        return completion.choices[0].message.content or ""

    answers = await asyncio.gather(*(one(i) for i in range(30)))
    assert all(answers)
    assert flaky.stats.requests > 0 and steady.stats.requests > 0
    stats = (await request(gateway.port, "GET", "/admin/stats")).json
    assert stats["requests"] == 30 and stats["errors"] == 0
