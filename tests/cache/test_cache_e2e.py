"""The response cache end to end with the official SDKs (memory backend): hits, streams, tenants, controls,
the memory bound, errors, the Anthropic front door and the admin endpoints (issue 13, "Must show")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Call, Handler, Principal, Reply
from support import (
    USER,
    CaptureUpstream,
    RawConnection,
    chunk_event,
    completion_body,
    config,
    default_respond,
    deployment,
    error_response,
    http_request,
    model,
)

PRICE = {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}


class Clock:
    """A clock the test moves (ttl and expiry without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def principal_from_headers(call: Call, next_handler: Handler) -> Reply:
    """A test auth stage: the principal named by ``x-test-key`` / ``x-test-team`` (none without them)."""
    key = call.headers.get("x-test-key")
    if key is not None:
        call = call.evolve(principal=Principal(key_id=key, team=call.headers.get("x-test-team")))
    return await next_handler(call)


StartCached = Callable[..., Awaitable[Gateway]]


@pytest.fixture
def start_cached(start_gateway: Callable[..., Awaitable[Gateway]]) -> StartCached:
    """``await start_cached(upstream, cache={...}, server_cache={...})``: a gateway whose model ``chat`` caches."""

    async def start(upstream: CaptureUpstream, *, cache: dict[str, Any] | None = None,
                    server_cache: dict[str, Any] | None = None, clock: Clock | None = None,
                    extra_models: tuple[dict[str, Any], ...] = ()) -> Gateway:
        data = config(model("chat", deployment("up", upstream.base_url, price=PRICE), retries=0,
                            cache=cache or {"mode": "exact"}), *extra_models,
                      **({"cache": server_cache} if server_cache else {}))
        return await start_gateway(data, clock=clock, middlewares={"auth": [principal_from_headers]})

    return start


async def ask(client: openai.AsyncOpenAI, content: str = "Hello there", headers: dict[str, str] | None = None,
              **fields: Any) -> tuple[str | None, dict[str, str]]:
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": content}], extra_headers=headers or {}, **fields)
    answer = raw.parse()
    return answer.choices[0].message.content, dict(raw.headers)


async def admin(gateway: Gateway, method: str = "GET", path: str = "/admin/cache") -> Any:
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request(method, path))
        response = await conn.read_response()
    assert response.status == 200, response.body
    return response.json


# -- a repeat is a hit ---------------------------------------------------------------------------------------------
async def test_a_repeat_is_a_hit_and_the_upstream_is_called_once(start_upstream: Any, start_cached: StartCached,
                                                                 make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    first, h1 = await ask(client)
    second, h2 = await ask(client)
    assert first == second == "Hello from upstream"
    assert upstream.count == 1
    assert h1["x-stellwerk-cache"] == "miss" and float(h1["x-stellwerk-cost"]) > 0
    assert h2["x-stellwerk-cache"] == "hit" and h2["x-stellwerk-cost"] == "0"
    assert "x-stellwerk-cache-score" not in h2
    assert h2["x-stellwerk-deployment"] == "cache"


async def test_fields_that_do_not_change_the_answer_share_an_entry(start_upstream: Any, start_cached: StartCached,
                                                                   make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    await ask(client, user="alice", temperature=0.5)
    _, same = await ask(client, user="bob", temperature=0.5, metadata={"run": "2"})
    _, other = await ask(client, user="alice", temperature=0.7)  # sampling changes the answer
    assert same["x-stellwerk-cache"] == "hit" and other["x-stellwerk-cache"] == "miss"
    assert upstream.count == 2


async def test_models_without_a_cache_carry_no_cache_header(start_upstream: Any, start_cached: StartCached,
                                                            make_client: Any) -> None:
    upstream = await start_upstream()
    gateway = await start_cached(upstream, extra_models=(model("plain", deployment("p", upstream.base_url)),))
    client = make_client(gateway)
    for _ in range(2):
        raw = await client.chat.completions.with_raw_response.create(model="plain", messages=USER)
        assert "x-stellwerk-cache" not in raw.headers
    assert upstream.count == 2


# -- streams and non-streams share entries ---------------------------------------------------------------------------
async def test_a_stream_after_a_non_stream_replays_it(start_upstream: Any, start_cached: StartCached,
                                                      make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    text, _ = await ask(client)
    async with client.chat.completions.with_streaming_response.create(
            model="chat", messages=USER, stream=True, stream_options={"include_usage": True}) as response:
        assert response.headers["x-stellwerk-cache"] == "hit"
        assert response.headers["x-stellwerk-cost"] == "0"
        lines = [line async for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == text
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    assert upstream.count == 1


async def test_a_replayed_stream_has_no_usage_chunk_unless_asked(start_upstream: Any, start_cached: StartCached,
                                                                 make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    await ask(client)
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks) and chunks[-1].choices[0].finish_reason == "stop"


async def test_a_completed_stream_is_stored_and_answers_a_non_stream(start_upstream: Any, start_cached: StartCached,
                                                                     make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True,
                                                  stream_options={"include_usage": True})
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    text, headers = await ask(client)
    assert text == streamed == "Hello from upstream"
    assert headers["x-stellwerk-cache"] == "hit" and upstream.count == 1
    again = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    assert "".join([c.choices[0].delta.content or "" async for c in again if c.choices]) == streamed
    assert upstream.count == 1


async def test_tool_calls_survive_the_round_trip(start_upstream: Any, start_cached: StartCached,
                                                 make_client: Any) -> None:
    tool_calls = [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}]

    async def respond(req: Request) -> Response:
        return Response(200, completion_body(None, tool_calls=tool_calls))

    upstream = await start_upstream(respond)
    client = make_client(await start_cached(upstream))
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    first = await client.chat.completions.create(model="chat", messages=USER, tools=tools)
    stream = await client.chat.completions.create(model="chat", messages=USER, tools=tools, stream=True)
    chunks = [c async for c in stream]
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert first.choices[0].message.tool_calls is not None
    assert calls[0].function is not None and calls[0].function.arguments == '{"city":"Oslo"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls" and upstream.count == 1


# -- tenants -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scope", "same_team_shares", "other_team_shares"),
                         [("key", False, False), ("team", True, False), ("global", True, True)])
async def test_tenants_share_entries_only_as_the_scope_says(start_upstream: Any, start_cached: StartCached,
                                                            make_client: Any, scope: str, same_team_shares: bool,
                                                            other_team_shares: bool) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream, cache={"mode": "exact", "scope": scope}))
    _, first = await ask(client, headers={"x-test-key": "k1", "x-test-team": "red"})
    _, same_key = await ask(client, headers={"x-test-key": "k1", "x-test-team": "red"})
    _, same_team = await ask(client, headers={"x-test-key": "k2", "x-test-team": "red"})
    _, other_team = await ask(client, headers={"x-test-key": "k3", "x-test-team": "blue"})
    assert first["x-stellwerk-cache"] == "miss" and same_key["x-stellwerk-cache"] == "hit"
    assert (same_team["x-stellwerk-cache"] == "hit") is same_team_shares
    assert (other_team["x-stellwerk-cache"] == "hit") is other_team_shares


async def test_a_key_without_a_team_is_its_own_team_and_anonymous_callers_share(
        start_upstream: Any, start_cached: StartCached, make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream, cache={"mode": "exact", "scope": "team"}))
    await ask(client, headers={"x-test-key": "k1"})
    _, other_key = await ask(client, headers={"x-test-key": "k2"})
    assert other_key["x-stellwerk-cache"] == "miss"
    await ask(client)  # no principal: anonymous
    _, anonymous = await ask(client)
    assert anonymous["x-stellwerk-cache"] == "hit"


# -- request controls and ttl --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{"x-stellwerk-cache": "no-cache"}, {"cache-control": "no-cache"}])
async def test_no_cache_does_not_read_but_writes(start_upstream: Any, start_cached: StartCached, make_client: Any,
                                                 headers: dict[str, str]) -> None:
    answers = iter([b"first", b"second"])

    async def respond(req: Request) -> Response:
        return Response(200, completion_body(next(answers).decode()))

    upstream = await start_upstream(respond)
    client = make_client(await start_cached(upstream))
    assert (await ask(client))[0] == "first"
    fresh, h = await ask(client, headers=headers)
    assert fresh == "second" and h["x-stellwerk-cache"] == "miss" and upstream.count == 2
    again, h = await ask(client)
    assert again == "second" and h["x-stellwerk-cache"] == "hit"  # no-cache wrote the fresh answer


@pytest.mark.parametrize("headers", [{"x-stellwerk-cache": "no-store"}, {"cache-control": "max-age=0, no-store"}])
async def test_no_store_neither_reads_nor_writes(start_upstream: Any, start_cached: StartCached, make_client: Any,
                                                 headers: dict[str, str]) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    _, h = await ask(client, headers=headers)
    assert h["x-stellwerk-cache"] == "bypass"
    _, h = await ask(client)
    assert h["x-stellwerk-cache"] == "miss"
    _, h = await ask(client, headers=headers)
    assert h["x-stellwerk-cache"] == "bypass" and upstream.count == 3


async def test_entries_expire_after_the_models_ttl_or_the_requests(start_upstream: Any, start_cached: StartCached,
                                                                   make_client: Any) -> None:
    clock = Clock()
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream, cache={"mode": "exact", "ttl": 60}, clock=clock))
    await ask(client, "model ttl")
    await ask(client, "request ttl", headers={"x-stellwerk-cache-ttl": "5"})
    clock.now += 6
    assert (await ask(client, "request ttl"))[1]["x-stellwerk-cache"] == "miss"
    assert (await ask(client, "model ttl"))[1]["x-stellwerk-cache"] == "hit"
    clock.now += 55
    assert (await ask(client, "model ttl"))[1]["x-stellwerk-cache"] == "miss"


async def test_invalid_controls_are_a_400(start_upstream: Any, start_cached: StartCached, make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream))
    for headers in ({"x-stellwerk-cache": "sometimes"}, {"x-stellwerk-cache-ttl": "soon"},
                    {"x-stellwerk-cache-ttl": "0"}):
        with pytest.raises(openai.BadRequestError) as caught:
            await ask(client, headers=headers)
        assert "x-stellwerk-cache" in caught.value.message
    assert upstream.count == 0


# -- the memory bound ------------------------------------------------------------------------------------------------
async def test_the_memory_bound_holds(start_upstream: Any, start_cached: StartCached, make_client: Any) -> None:
    upstream = await start_upstream()
    gateway = await start_cached(upstream, server_cache={"backend": "memory", "max_bytes": 4096})
    client = make_client(gateway)
    for i in range(40):
        await ask(client, f"question {i}")
        figures = await admin(gateway)
        assert 0 < figures["bytes"] <= 4096
    assert figures["entries"] < 40
    assert (await ask(client, "question 39"))[1]["x-stellwerk-cache"] == "hit"
    assert (await ask(client, "question 0"))[1]["x-stellwerk-cache"] == "miss"  # evicted long ago


# -- errors and incomplete answers are never cached -------------------------------------------------------------------
async def test_errors_are_never_cached(start_upstream: Any, start_cached: StartCached, make_client: Any) -> None:
    failing = True

    async def respond(req: Request) -> Response | StreamingResponse:
        if failing:
            return error_response(500, "boom", type_="server_error")
        return await default_respond(req)

    upstream = await start_upstream(respond)
    client = make_client(await start_cached(upstream))
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError):
            if stream:
                await client.chat.completions.create(model="chat", messages=USER, stream=True)
            else:
                await ask(client)
    failing = False
    _, h = await ask(client)
    assert h["x-stellwerk-cache"] == "miss"


async def test_a_content_filtered_answer_is_never_cached(start_upstream: Any, start_cached: StartCached,
                                                         make_client: Any) -> None:
    async def respond(req: Request) -> Response:
        body = orjson.loads(completion_body("[filtered]"))
        body["choices"][0]["finish_reason"] = "content_filter"
        return Response(200, orjson.dumps(body))

    upstream = await start_upstream(respond)
    client = make_client(await start_cached(upstream))
    await ask(client)
    _, h = await ask(client)
    assert h["x-stellwerk-cache"] == "miss" and upstream.count == 2


async def test_an_interrupted_stream_is_never_cached(start_upstream: Any, start_cached: StartCached,
                                                     make_client: Any) -> None:
    async def broken(req: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""})
            yield chunk_event({"content": "Hello"})  # and then the connection ends, without a finish

        return StreamingResponse(events())

    upstream = await start_upstream(broken)
    gateway = await start_cached(upstream)
    client = make_client(gateway)
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    with pytest.raises(openai.APIError):
        _ = [c async for c in stream]
    upstream.respond = default_respond
    _, h = await ask(client)
    assert h["x-stellwerk-cache"] == "miss"


async def test_a_stream_with_a_content_filter_finish_is_never_cached(start_upstream: Any, start_cached: StartCached,
                                                                     make_client: Any) -> None:
    async def filtered(req: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": "Hel"})
            yield chunk_event({}, "content_filter")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events())

    upstream = await start_upstream(filtered)
    client = make_client(await start_cached(upstream))
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    _ = [c async for c in stream]
    upstream.respond = default_respond
    _, h = await ask(client)
    assert h["x-stellwerk-cache"] == "miss"


# -- a hit costs nothing; the saving is recorded ---------------------------------------------------------------------
async def test_the_saved_cost_is_recorded(start_upstream: Any, start_cached: StartCached, make_client: Any) -> None:
    upstream = await start_upstream()
    gateway = await start_cached(upstream)
    client = make_client(gateway)
    _, miss = await ask(client)
    await ask(client)
    await ask(client)
    cost = float(miss["x-stellwerk-cost"])
    stats = await admin(gateway, path="/admin/stats")
    assert stats["cache_hits"] == 2 and stats["saved_cost_usd"] == pytest.approx(2 * cost)
    assert stats["cost_usd"] == pytest.approx(cost) and stats["deployments"]["up"]["requests"] == 1
    figures = await admin(gateway)
    chat = figures["models"]["chat"]
    assert (chat["hits"], chat["misses"], chat["semantic_hits"], chat["entries"]) == (2, 1, 0, 1)
    assert chat["saved_cost"] == pytest.approx(2 * cost) and chat["bytes"] > 0


# -- admin ---------------------------------------------------------------------------------------------------------
async def test_admin_flushes_everything_or_one_model(start_upstream: Any, start_cached: StartCached,
                                                     make_client: Any) -> None:
    upstream = await start_upstream()
    other = model("other", deployment("o", upstream.base_url), cache={"mode": "exact"})
    gateway = await start_cached(upstream, extra_models=(other,))
    client = make_client(gateway)
    for name in ("chat", "other"):
        await client.chat.completions.create(model=name, messages=USER)
    figures = await admin(gateway)
    assert figures["models"]["chat"]["entries"] == 1 and figures["models"]["other"]["entries"] == 1
    flushed = await admin(gateway, "DELETE", "/admin/cache?model=chat")
    assert flushed == {"status": "flushed", "model": "chat", "entries": 1}
    figures = await admin(gateway)
    assert figures["models"]["chat"]["entries"] == 0 and figures["models"]["other"]["entries"] == 1
    assert (await admin(gateway, "DELETE"))["entries"] == 1
    assert (await admin(gateway))["entries"] == 0
    raw = await client.chat.completions.with_raw_response.create(model="other", messages=USER)
    assert raw.headers["x-stellwerk-cache"] == "miss"


async def test_admin_cache_is_404_without_a_caching_model(start_upstream: Any, start_gateway: Any) -> None:
    upstream = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("up", upstream.base_url))))
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("GET", "/admin/cache"))
        assert (await conn.read_response()).status == 404


# -- the Anthropic front door ------------------------------------------------------------------------------------------
async def test_the_anthropic_front_door_renders_hits_and_replayed_streams(start_upstream: Any, start_cached: StartCached,
                                                                          make_anthropic: Any) -> None:
    upstream = await start_upstream()
    client = make_anthropic(await start_cached(upstream))
    request = {"model": "chat", "max_tokens": 64, "messages": [{"role": "user", "content": "Hello there"}]}
    first = await client.messages.with_raw_response.create(**request)
    second = await client.messages.with_raw_response.create(**request)
    assert first.headers["x-stellwerk-cache"] == "miss" and second.headers["x-stellwerk-cache"] == "hit"
    assert second.headers["x-stellwerk-cost"] == "0"
    message = await second.parse()
    assert message.content[0].text == "Hello from upstream" and message.stop_reason == "end_turn"
    async with client.messages.stream(**request) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from upstream" and final.stop_reason == "end_turn" and final.usage.output_tokens == 5
    assert upstream.count == 1




# -- semantic mode ------------------------------------------------------------------------------------------------------
async def test_semantic_mode_hits_paraphrases_and_refuses_near_duplicates(start_upstream: Any, start_cached: StartCached,
                                                                          make_client: Any) -> None:
    upstream = await start_upstream()
    gateway = await start_cached(upstream, cache={"mode": "semantic"})
    client = make_client(gateway)
    assert (await ask(client, "convert 100 USD to EUR"))[1]["x-stellwerk-cache"] == "miss"
    _, same = await ask(client, "Convert 100 USD to EUR please")
    assert same["x-stellwerk-cache"] == "semantic-hit" and same["x-stellwerk-cost"] == "0"
    assert 0.90 <= float(same["x-stellwerk-cache-score"]) <= 1.0
    _, swapped = await ask(client, "convert 100 EUR to USD")
    assert swapped["x-stellwerk-cache"] == "miss" and "x-stellwerk-cache-score" not in swapped
    _, exact = await ask(client, "convert 100 USD to EUR")
    assert exact["x-stellwerk-cache"] == "hit"
    assert upstream.count == 2
    figures = (await admin(gateway))["models"]["chat"]
    assert (figures["hits"], figures["semantic_hits"], figures["misses"]) == (1, 1, 2)


async def test_semantic_hits_need_everything_else_to_match(start_upstream: Any, start_cached: StartCached,
                                                           make_client: Any) -> None:
    upstream = await start_upstream()
    client = make_client(await start_cached(upstream, cache={"mode": "semantic", "threshold": 0.8}))

    async def ask_with(system: str, question: str, **fields: Any) -> str:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
            **fields)
        return str(raw.headers["x-stellwerk-cache"])

    assert await ask_with("Be brief.", "What is the capital of France?") == "miss"
    assert await ask_with("Be brief.", "what's the capital of France") == "semantic-hit"
    assert await ask_with("Be verbose.", "what's the capital of France") == "miss"  # another system prompt
    assert await ask_with("Be brief.", "what's the capital of France", temperature=1.5) == "miss"
    assert await ask_with("Be brief.", "What is the capital of France?",
                          extra_headers={"x-stellwerk-cache": "no-store"}) == "bypass"


async def test_a_translated_stream_is_collected_and_replayed(start_sim: Any, start_gateway: Any,
                                                             make_client: Any) -> None:
    """An upstream speaking another protocol: its chunks reach the cache as dicts, not bytes."""
    key = "sk-ant-sim-0123456789abcdef"
    sim = await start_sim(protocol="anthropic", api_key=key, output_tokens=6)
    claude = {"id": "claude", "provider": "anthropic", "model": "claude-sim", "api_base": sim.base_url, "api_key": key}
    gateway = await start_gateway(config(model("chat", claude, cache={"mode": "exact"})))
    client = make_client(gateway)
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    text, headers = await ask(client)
    assert streamed and text == streamed and headers["x-stellwerk-cache"] == "hit"
    again = await client.chat.completions.create(model="chat", messages=USER, stream=True,
                                                 stream_options={"include_usage": True})
    chunks = [c async for c in again]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == streamed
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_hits_and_misses_reach_the_metrics(start_upstream: Any, start_cached: StartCached,
                                                 make_client: Any) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    upstream = await start_upstream()
    gateway = await start_cached(upstream)
    client = make_client(gateway)
    await ask(client)
    await ask(client)
    await ask(client, headers={"x-stellwerk-cache": "no-store"})
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("GET", "/metrics"))
        scraped = (await conn.read_response()).body.decode()
    counts = {sample.labels["result"]: sample.value for family in text_string_to_metric_families(scraped)
              if family.name == "stellwerk_cache_requests" for sample in family.samples
              if sample.name.endswith("_total") and sample.labels["model"] == "chat"}
    assert counts == {"hit": 1, "semantic-hit": 0, "miss": 1, "bypass": 1}
    saved = [sample.value for family in text_string_to_metric_families(scraped)
             if family.name == "stellwerk_cache_saved_usd" for sample in family.samples
             if sample.name.endswith("_total")]
    assert len(saved) == 1 and saved[0] > 0  # the hit saved what the first answer cost
