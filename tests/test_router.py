"""The Router as a library, in-process and without a gateway: answers, streams, embeddings, failover, telemetry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from stellwerk import (
    AllAttemptsFailedError,
    Event,
    InvalidRequestError,
    ModelNotFoundError,
    Outcome,
    RequestFinished,
    Router,
    UpstreamError,
)
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.sim import SimProvider
from support import (
    GUARD,
    USER,
    CaptureUpstream,
    VirtualTimeouts,
    closed_port_url,
    completion_body,
    config,
    deployment,
    model,
)

PRICE = {"input_per_mtok": 2.5, "output_per_mtok": 10.0}

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]


class Recorder(list[RequestFinished]):
    """A listener keeping the finished requests (every other event passes by)."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestFinished):
            self.append(event)


@pytest.fixture
async def routers() -> AsyncIterator[Callable[..., Router]]:
    made: list[Router] = []

    def make(*models: dict[str, Any], listeners: list[Any] | None = None, **options: Any) -> Router:
        router = Router.from_dict(config(*models), env={}, listeners=listeners or [], **options)
        made.append(router)
        return router

    yield make
    for router in made:
        await router.aclose()


# -- answers -----------------------------------------------------------------------------------------------------------
async def test_chat(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim(output_tokens=6)
    records = Recorder()
    router = routers(model("chat", deployment("a", sim.base_url, price=PRICE)), listeners=[records])
    result = await router.chat(model="chat", messages=USER, temperature=0.2)
    assert result.text is not None and len(result.text.split()) == 6
    assert result.text == result.data["choices"][0]["message"]["content"]
    assert result.raw is not None and orjson.loads(result.raw) == result.data
    assert (result.model, result.deployment, result.attempts) == ("chat", "a", 1)
    upstream_usage = result.data["usage"]
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        upstream_usage["prompt_tokens"], upstream_usage["completion_tokens"])
    assert not result.usage.estimated
    expected_cost = (upstream_usage["prompt_tokens"] * 2.5 + upstream_usage["completion_tokens"] * 10.0) / 1e6
    assert result.cost == pytest.approx(expected_cost)
    [record] = records
    assert (record.operation, record.model, record.deployment, record.status, record.stream) == (
        "chat", "chat", "a", 200, False)
    assert record.request_id == result.request_id
    assert record.usage == result.usage and record.cost == result.cost
    assert record.attempts == () and record.upstream_attempts == 1


async def test_chat_body_dict_and_request_id(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim()
    router = routers(model("chat", deployment("a", sim.base_url)))
    result = await router.chat({"model": "chat", "messages": USER, "stream": False}, request_id="rid-1")
    assert result.request_id == "rid-1"
    assert router.models == ["chat"]


async def test_chat_stream(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim(output_tokens=5)
    records = Recorder()
    router = routers(model("chat", deployment("a", sim.base_url, price=PRICE)), listeners=[records])
    stream = await router.chat_stream(model="chat", messages=USER)
    assert (stream.deployment, stream.attempts) == ("a", 1)
    chunks = [chunk async for chunk in stream]
    assert all(chunk["choices"] for chunk in chunks)  # no usage-only chunk: the caller did not ask for one
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert len(text.split()) == 5
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    # ...but the router asked the upstream for usage, so cost is exact.
    assert stream.usage is not None and not stream.usage.estimated
    assert stream.usage.completion_tokens == 5
    assert stream.cost == pytest.approx(stream.usage.cost(router.config.models[0].deployments[0].price))
    [record] = records
    assert (record.status, record.stream, record.deployment, record.usage) == (200, True, "a", stream.usage)
    assert record.ttft is not None


async def test_chat_stream_with_include_usage(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim(output_tokens=3)
    router = routers(model("chat", deployment("a", sim.base_url)))
    stream = await router.chat_stream(model="chat", messages=USER, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 3


async def test_chat_stream_sse_bytes(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim(output_tokens=2)
    router = routers(model("chat", deployment("a", sim.base_url)))
    stream = await router.chat_stream(model="chat", messages=USER)
    data = b"".join([part async for part in stream.sse()])
    events = [e for e in data.split(b"\n\n") if e]
    assert all(e.startswith(b"data: ") for e in events)
    assert events[-1] == b"data: [DONE]"
    assert orjson.loads(events[0][6:])["object"] == "chat.completion.chunk"


async def test_embeddings(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim(embedding_dimensions=8)
    records = Recorder()
    router = routers(model("embed", deployment("e", sim.base_url, price=PRICE)), listeners=[records])
    result = await router.embeddings(model="embed", input=["one", "two"])
    assert [len(item["embedding"]) for item in result.data["data"]] == [8, 8]
    assert result.usage.prompt_tokens == result.data["usage"]["prompt_tokens"] > 0
    assert result.usage.completion_tokens == 0
    assert result.cost == pytest.approx(result.usage.prompt_tokens * 2.5 / 1e6)
    assert records[0].operation == "embeddings" and records[0].deployment == "e"


async def test_usage_is_estimated_when_the_upstream_reports_none(
    start_upstream: StartUpstream, routers: Callable[..., Router]
) -> None:
    async def respond(req: Request) -> Response:
        return Response(200, completion_body("four words right here", prompt_tokens=None))

    up = await start_upstream(respond)
    router = routers(model("chat", deployment("a", up.base_url, price=PRICE)))
    result = await router.chat(model="chat", messages=[{"role": "user", "content": "x" * 40}])
    assert result.usage.estimated
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.cost > 0


# -- errors before any upstream ----------------------------------------------------------------------------------------
async def test_unknown_model_and_invalid_request(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    sim = await start_sim()
    router = routers(model("chat", deployment("a", sim.base_url)))
    with pytest.raises(ModelNotFoundError) as info:
        await router.chat(model="gpt-9", messages=USER)
    assert "gpt-9" in info.value.message and info.value.status == 404
    with pytest.raises(InvalidRequestError) as bad:
        await router.chat(model="chat", messages=[{"role": "wizard", "content": "x"}])
    assert bad.value.param == "messages[0].role"
    with pytest.raises(InvalidRequestError):
        await router.chat_stream(model="chat", messages=[])
    with pytest.raises(InvalidRequestError):
        await router.embeddings(model="chat", input=[])
    assert sim.stats.requests == 0


# -- the attempt loop --------------------------------------------------------------------------------------------------
async def test_transient_failure_moves_on_at_once(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    """A 5xx sends the request to the next untried deployment first (retry somewhere else)."""
    bad = await start_sim(error_rate=1.0, error_statuses=(500,))
    good = await start_sim()
    records = Recorder()
    router = routers(model("chat", deployment("a", bad.base_url), deployment("b", good.base_url), retries=2),
                     listeners=[records])
    result = await router.chat(model="chat", messages=USER)
    assert (result.deployment, result.attempts) == ("b", 2)
    assert bad.stats.requests == 1 and good.stats.requests == 1
    assert [(a.deployment, a.status, a.outcome) for a in records[0].attempts] == [("a", 500, Outcome.RETRY_HERE)]
    assert records[0].upstream_attempts == 2


def failing_times(n: int, status: int = 503) -> Callable[[Request], Awaitable[Response]]:
    """A responder that fails ``n`` times, then answers."""
    calls = 0

    async def respond(req: Request) -> Response:
        nonlocal calls
        calls += 1
        if calls <= n:
            return Response(status, orjson.dumps({"error": {"message": "overloaded", "type": "server_error"}}))
        return Response(200, completion_body())

    return respond


@pytest.mark.parametrize(("retries", "answered"), [(2, True), (1, False), (0, False)])
async def test_retries_repeat_on_the_only_deployment(retries: int, answered: bool, start_upstream: StartUpstream,
                                                     routers: Callable[..., Router]) -> None:
    up = await start_upstream(failing_times(2))
    router = routers(model("chat", deployment("a", up.base_url), retries=retries, backoff={"base": 0.01}))
    if answered:
        result = await router.chat(model="chat", messages=USER)
        assert (result.deployment, result.attempts) == ("a", 3)
    else:
        with pytest.raises(AllAttemptsFailedError) as info:
            await router.chat(model="chat", messages=USER)
        assert len(info.value.attempts) == retries + 1
    assert up.count == min(3, retries + 1)


async def test_move_on_outcomes_are_not_retried_on_the_same_deployment(
    start_sim: StartSim, routers: Callable[..., Router]
) -> None:
    locked = await start_sim(api_key="the-right-key")
    good = await start_sim()
    router = routers(model("chat", deployment("a", locked.base_url, api_key="a-wrong-key"),
                           deployment("b", good.base_url), retries=3))
    result = await router.chat(model="chat", messages=USER)
    assert (result.deployment, result.attempts) == ("b", 2)
    assert locked.stats.requests == 1


async def test_context_too_long_moves_on_and_is_400_when_nobody_fits(
    start_sim: StartSim, routers: Callable[..., Router]
) -> None:
    small = await start_sim(context_window=5)
    large = await start_sim()
    long = [{"role": "user", "content": "word " * 40}]
    router = routers(model("chat", deployment("a", small.base_url), deployment("b", large.base_url)),
                     model("tiny", deployment("c", small.base_url)))
    assert (await router.chat(model="chat", messages=long)).deployment == "b"
    assert small.stats.requests == 1  # not retried: it would not fit next time either
    with pytest.raises(InvalidRequestError) as info:
        await router.chat(model="tiny", messages=long)
    assert info.value.status == 400
    assert info.value.code == "context_length_exceeded"
    assert small.stats.requests == 2


async def test_client_error_is_returned_at_once(start_upstream: StartUpstream, routers: Callable[..., Router]) -> None:
    async def reject(req: Request) -> Response:
        return Response(400, orjson.dumps({"error": {"message": "Invalid value for 'foo'.", "type":
                                                     "invalid_request_error", "param": "foo", "code": None}}))

    first = await start_upstream(reject)
    second = await start_upstream()
    records = Recorder()
    router = routers(model("chat", deployment("a", first.base_url), deployment("b", second.base_url), retries=2),
                     listeners=[records])
    with pytest.raises(UpstreamError) as info:
        await router.chat(model="chat", messages=USER)
    assert info.value.status == 400 and info.value.outcome is Outcome.CLIENT_ERROR
    assert "Invalid value for 'foo'." in info.value.message
    assert first.count == 1 and second.count == 0
    assert records[0].status == 400 and records[0].deployment is None


@pytest.mark.parametrize(("kind", "status"), [("rate_limited", 429), ("hang", 504), ("refused", 503), ("mixed", 502)])
async def test_all_attempts_failed_status(
    kind: str, status: int, start_sim: StartSim, routers: Callable[..., Router],
    virtual_timeouts: Callable[[dict[str, Callable[[], int]]], VirtualTimeouts]
) -> None:
    bases: list[str] = []
    options: dict[str, Any] = {}
    if kind == "rate_limited":
        bases = [(await start_sim(rate_limit_rate=1.0, retry_after_s=0)).base_url for _ in range(2)]
    elif kind == "hang":  # each attempt times out once its sim holds it, however slowly a loaded machine connects
        sims = [await start_sim(hang_rate=1.0) for _ in range(2)]
        bases = [sim.base_url for sim in sims]
        options["transport"] = virtual_timeouts({sim.base_url: lambda sim=sim: sim.stats.hang for sim in sims})
    elif kind == "refused":
        bases = [closed_port_url(), closed_port_url()]
    else:
        bases = [closed_port_url(), (await start_sim(error_rate=1.0, error_statuses=(503,))).base_url]
    records = Recorder()
    router = routers(model("chat", *(deployment(f"d{i}", b) for i, b in enumerate(bases)), retries=1,
                           timeout=GUARD, backoff={"base": 0.01}),
                     listeners=[records], **options)
    with pytest.raises(AllAttemptsFailedError) as info:
        await router.chat(model="chat", messages=USER)
    err = info.value
    assert err.status == status
    tried = [a.deployment for a in err.attempts]
    assert sorted(tried) == ["d0", "d0", "d1", "d1"]  # 1 + retries each...
    assert tried[:2] == ["d0", "d1"]  # ...every deployment once before any repeat
    for name in ("d0", "d1"):
        assert f"{name}: " in err.message
    assert records[0].status == status and records[0].deployment is None and len(records[0].attempts) == 4


async def test_malformed_answer_moves_on(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    broken = await start_sim(malformed_rate=1.0)
    good = await start_sim()
    router = routers(model("chat", deployment("a", broken.base_url), deployment("b", good.base_url), retries=0))
    assert (await router.chat(model="chat", messages=USER)).deployment == "b"
    assert (await router.embeddings(model="chat", input="x")).deployment == "b"
    assert broken.stats.malformed == 2


# -- streams: before and after the first chunk -------------------------------------------------------------------------
async def _die_before_first_event(req: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        raise ConnectionResetError("gone before the first event")
        yield b""  # pragma: no cover

    return StreamingResponse(chunks())


async def test_stream_failing_before_first_chunk_fails_over(
    start_upstream: StartUpstream, start_sim: StartSim, routers: Callable[..., Router]
) -> None:
    dying = await start_upstream(_die_before_first_event)
    good = await start_sim(output_tokens=3)
    router = routers(model("chat", deployment("a", dying.base_url), deployment("b", good.base_url), retries=0))
    stream = await router.chat_stream(model="chat", messages=USER)
    assert (stream.deployment, stream.attempts) == ("b", 2)
    chunks = [c async for c in stream]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert len(text.split()) == 3


async def test_stream_breaking_mid_way_raises_and_records(start_sim: StartSim, routers: Callable[..., Router]) -> None:
    dropping = await start_sim(drop_mid_stream_rate=1.0, output_tokens=20)
    good = await start_sim()
    records = Recorder()
    router = routers(model("chat", deployment("a", dropping.base_url), deployment("b", good.base_url),
                           resume_streams=False), listeners=[records])
    stream = await router.chat_stream(model="chat", messages=USER)
    assert stream.deployment == "a"  # committed once the first chunk arrived
    with pytest.raises(UpstreamError) as info:
        async for _ in stream:
            pass
    assert info.value.outcome is Outcome.RETRY_HERE
    assert good.stats.requests == 0  # resuming is off: the broken answer is not continued elsewhere
    [record] = records
    assert record.status == 502 and record.deployment is None
    assert record.attempts[-1].deployment == "a"


async def test_stream_breaking_mid_way_is_resumed_elsewhere(start_sim: StartSim, start_upstream: StartUpstream,
                                                            routers: Callable[..., Router]) -> None:
    dropping = await start_sim(drop_mid_stream_rate=1.0, output_tokens=20)
    spare = await start_upstream()
    records = Recorder()
    router = routers(model("chat", deployment("a", dropping.base_url), deployment("b", spare.base_url)),
                     listeners=[records])
    stream = await router.chat_stream(model="chat", messages=USER, max_tokens=50)
    chunks = [chunk async for chunk in stream]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.endswith("Hello from upstream")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1  # one answer, under the original chunk id
    assert stream.deployment == "b"
    # The spare was asked to continue the partial answer, not to start over.
    continued = spare.last.json
    partial = text.removesuffix("Hello from upstream")
    assert partial and continued["messages"][:len(USER)] == USER
    assert {"role": "assistant", "content": partial} in continued["messages"]
    assert continued["max_tokens"] < 50
    [record] = records
    assert record.status == 200 and record.deployment == "b"


async def test_abandoned_stream_closes_the_upstream_connection(
    start_upstream: StartUpstream, routers: Callable[..., Router]
) -> None:
    up = await start_upstream()
    up.respond = up.stream_then_hang
    records = Recorder()
    router = routers(model("chat", deployment("a", up.base_url)), listeners=[records])
    stream = await router.chat_stream(model="chat", messages=USER)
    iterator = aiter(stream)
    await anext(iterator)
    await stream.aclose()
    async with asyncio.timeout(GUARD):
        await up.cancelled.wait()
    assert records[0].status == 499
    await iterator.aclose()  # type: ignore[attr-defined]
    assert len(records) == 1  # one record per request, however it ends


async def test_listener_errors_never_fail_a_request(start_sim: StartSim, routers: Callable[..., Router],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sim = await start_sim()

    def broken(record: Event) -> None:
        raise RuntimeError("telemetry bug")

    records = Recorder()
    router = routers(model("chat", deployment("a", sim.base_url)), listeners=[broken, records])
    assert (await router.chat(model="chat", messages=USER)).deployment == "a"
    assert len(records) == 1
    assert "telemetry listener" in caplog.text


# -- per-call upstream headers ----------------------------------------------------------------------------------------
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_a_valid_traceparent_goes_upstream_with_every_attempt(start_upstream: StartUpstream,
                                                                     routers: Callable[..., Router]) -> None:
    up = await start_upstream()
    router = routers(model("chat", deployment("a", up.base_url)))
    await router.chat(model="chat", messages=USER, headers={"traceparent": TRACEPARENT})
    stream = await router.chat_stream(model="chat", messages=USER, headers={"traceparent": TRACEPARENT})
    async for _ in stream:
        pass
    assert [r.headers.get("traceparent") for r in up.requests] == [TRACEPARENT, TRACEPARENT]


@pytest.mark.parametrize("value", ["00-abc-def-01", f"{TRACEPARENT}\r\nx-injected: 1", TRACEPARENT.upper()])
async def test_a_malformed_traceparent_is_never_sent(value: str, start_upstream: StartUpstream,
                                                     routers: Callable[..., Router]) -> None:
    up = await start_upstream()
    router = routers(model("chat", deployment("a", up.base_url)))
    await router.chat(model="chat", messages=USER, headers={"traceparent": value})
    assert "traceparent" not in up.requests[0].headers
    assert "x-injected" not in up.requests[0].headers
