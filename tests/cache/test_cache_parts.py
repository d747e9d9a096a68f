"""The cache's parts on their own: the exact key, the semantic context, controls, the guard, stored entries and
replay, collecting a stream, the vector index of the memory backend."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from stellwerk.errors import InvalidRequestError
from stellwerk.pipeline import Principal
from stellwerk.pipeline.cache import (
    ANONYMOUS,
    Controls,
    context_key,
    exact_key,
    guard,
    read_controls,
    scope_id,
    signature,
)
from stellwerk.pipeline.cache.entry import Collector, decode, encode, replay_chunks, storable
from stellwerk.state import MemoryCache
from stellwerk.usage import Usage

BODY: dict[str, Any] = {"model": "chat", "messages": [{"role": "system", "content": "Be brief."},
                                                       {"role": "user", "content": "Hello"}],
                        "temperature": 0.2, "tools": [{"type": "function", "function": {"name": "f"}}]}


# -- the exact key ---------------------------------------------------------------------------------------------------
def test_the_key_ignores_json_key_order_and_fields_that_do_not_change_the_answer() -> None:
    reordered = dict(reversed(list(BODY.items())))
    noise = {**BODY, "user": "u1", "stream": True, "stream_options": {"include_usage": True}, "metadata": {"a": 1}}
    assert exact_key(BODY, ANONYMOUS) == exact_key(reordered, ANONYMOUS) == exact_key(noise, ANONYMOUS)


@pytest.mark.parametrize("change", [
    {"model": "other"}, {"temperature": 0.3}, {"top_p": 0.5}, {"stop": ["\n"]}, {"seed": 7}, {"n": 2},
    {"logit_bias": {"50256": -100}}, {"tool_choice": "none"}, {"response_format": {"type": "json_object"}},
    {"tools": []}, {"max_tokens": 10}, {"messages": [{"role": "user", "content": "Hello!"}]},
])
def test_everything_that_changes_the_answer_changes_the_key(change: dict[str, Any]) -> None:
    assert exact_key({**BODY, **change}, ANONYMOUS) != exact_key(BODY, ANONYMOUS)


def test_the_scope_is_part_of_the_key() -> None:
    assert exact_key(BODY, "key:a") != exact_key(BODY, "key:b") != exact_key(BODY, "global")


def test_scopes_of_principals() -> None:
    alice = Principal(key_id="k1", team="red")
    solo = Principal(key_id="k2")
    assert [scope_id("key", alice), scope_id("team", alice), scope_id("global", alice)] == \
        ["key:k1", "team:red", "global"]
    assert scope_id("team", solo) == "key:k2"  # a key without a team is its own team
    assert scope_id("key", None) == scope_id("team", None) == ANONYMOUS


def test_the_context_leaves_out_only_the_last_user_message_text() -> None:
    other_question = {**BODY, "messages": [BODY["messages"][0], {"role": "user", "content": "Hi"}]}
    other_system = {**BODY, "messages": [{"role": "system", "content": "Be long."}, BODY["messages"][1]]}
    assert context_key(BODY, "s") == context_key(other_question, "s")
    assert context_key(BODY, "s") != context_key(other_system, "s")
    assert context_key(BODY, "s") != context_key({**BODY, "temperature": 1.0}, "s")
    assert context_key(BODY, "s") != context_key(BODY, "t")


# -- controls --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("headers", "expected"), [
    ({}, Controls()),
    ({"x-stellwerk-cache": "no-cache"}, Controls(read=False)),
    ({"x-stellwerk-cache": "NO-STORE"}, Controls(read=False, write=False)),
    ({"cache-control": "no-cache, max-age=0"}, Controls(read=False)),
    ({"cache-control": "private, no-store"}, Controls(read=False, write=False)),
    ({"cache-control": "max-age=60"}, Controls()),
    ({"x-stellwerk-cache-ttl": "30"}, Controls(ttl=30.0)),
])
def test_request_controls(headers: dict[str, str], expected: Controls) -> None:
    assert read_controls(headers) == expected


@pytest.mark.parametrize("headers", [{"x-stellwerk-cache": "maybe"}, {"x-stellwerk-cache-ttl": "-1"},
                                     {"x-stellwerk-cache-ttl": "nan"}, {"x-stellwerk-cache-ttl": "86401"}])
def test_invalid_controls(headers: dict[str, str]) -> None:
    with pytest.raises(InvalidRequestError):
        read_controls(headers)


# -- the guard -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b"), [
    ("convert 100 USD to EUR", "convert 100 EUR to USD"),
    ("convert 100 USD to EUR", "convert 200 USD to EUR"),
    ("convert $100 to euros", "convert £100 to euros"),
    ("Convert 10 miles to km", "Convert 10 km to miles"),
    ('Translate "good morning" into French', 'Translate "good night" into French'),
    ("Explain `list.sort()`", "Explain `sorted()`"),
    ("Summarize https://example.com/a", "Summarize https://example.com/b"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("Is coffee healthy?", "Isn't coffee healthy?"),
    ("Is coffee healthy?", "Is coffee not healthy?"),
    ("What is the capital of France?", "Quelle est la capitale de la France ?"),
    ("What is the capital of France?", "Какая столица Франции?"),
    ("What is 2+2?", "What is 2*2?"),
    ("What is the largest planet?", "What is the smallest planet?"),
    ("How do I call get_user_by_id?", "How do I call get_user_by_name?"),
])
def test_the_guard_refuses_near_duplicates(a: str, b: str) -> None:
    assert not guard(a, b)


@pytest.mark.parametrize(("a", "b"), [
    ("What is the capital of France?", "what's the capital of France"),
    ("convert 100 USD to EUR", "How much is $100 in euros?"),
    ("How do I reverse a list in Python?", "What's the way to reverse a list in Python?"),
    ("Give me two ideas", "Give me 2 ideas"),
    ("The price is 1,000 dollars", "The price is 1000 USD"),
    ("Write a haiku about autumn.", "Write me a haiku about autumn."),
])
def test_the_guard_passes_paraphrases(a: str, b: str) -> None:
    assert guard(a, b), (signature(a), signature(b))


# -- entries ---------------------------------------------------------------------------------------------------------
ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "up",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def test_an_entry_round_trips() -> None:
    raw = orjson.dumps(ANSWER)
    entry = decode(encode(raw, Usage(3, 2, 1), 0.25, "dep", "Hello"))
    assert entry is not None
    assert (entry.answer, entry.raw, entry.usage, entry.cost, entry.deployment, entry.prompt) == \
        (ANSWER, raw, Usage(3, 2, 1), 0.25, "dep", "Hello")
    assert decode(b"not an entry") is None and decode(b"{}\n{}") is None


def test_only_complete_answers_are_storable() -> None:
    assert storable(ANSWER)
    for reason in (None, "content_filter"):
        assert not storable({**ANSWER, "choices": [{**ANSWER["choices"][0], "finish_reason": reason}]})
    assert not storable({**ANSWER, "choices": []})


def test_a_replayed_answer_collects_back_into_the_same_answer() -> None:
    tool_answer = {**ANSWER, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
         "finish_reason": "tool_calls"},
        {"index": 1, "message": {"role": "assistant", "content": "Second"}, "finish_reason": "stop"}]}
    for answer in (ANSWER, tool_answer):
        chunks = replay_chunks(answer, include_usage=True)
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == answer["usage"]
        collector = Collector(1 << 20)
        collector([(c, orjson.dumps(c)) for c in chunks[:2]])
        collector([(c, None) for c in chunks[2:]])
        rebuilt = collector.answer(Usage(3, 2))
        assert rebuilt is not None
        assert [(c["index"], c["message"], c["finish_reason"]) for c in rebuilt["choices"]] == \
            [(c["index"], c["message"], c["finish_reason"]) for c in answer["choices"]]
        assert rebuilt["usage"]["total_tokens"] == 5
    assert not any("usage" in c for c in replay_chunks(ANSWER, include_usage=False))


def test_the_collector_is_bounded() -> None:
    collector = Collector(100)
    collector([({}, b"x" * 60)])
    collector([({}, b"x" * 60)])
    assert collector.overflow and collector.chunks == []


# -- the memory backend's vector index ------------------------------------------------------------------------------
async def test_the_vector_index_forgets_evicted_and_flushed_entries() -> None:
    cache = MemoryCache(lambda: 0.0, max_bytes=10_000)
    for i in range(200):
        await cache.put(f"k{i}", b"v" * 10, 60, model="m", scope="s", vector=[1.0, i / 200])
    assert cache.bytes <= 10_000
    hit = await cache.nearest([1.0, 1.0], scope="s", threshold=0.0)
    assert hit is not None and hit.key == "k199"  # the nearest of those still held
    assert await cache.flush("m") > 0 and cache.bytes == 0
    assert await cache.nearest([1.0, 1.0], scope="s", threshold=0.0) is None
    assert await cache.usage() == {}


# -- configuration ---------------------------------------------------------------------------------------------------
def _config(cache: dict[str, Any], server: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"models": [{"name": "chat", "cache": cache, "deployments": [
        {"id": "d", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1"}]}]}
    if server is not None:
        data["server"] = {"cache": server}
    return data


def test_cache_config_defaults_and_errors() -> None:
    from stellwerk import load_dict
    from stellwerk.errors import ConfigError

    config = load_dict(_config({}))
    options, server = config.models[0].cache, config.server.cache
    assert (options.mode, options.ttl, options.scope, options.threshold) == ("off", 3600.0, "key", None)
    assert (server.backend, server.max_bytes, server.url) == (None, 64 << 20, None)  # memory, or server.redis
    for cache, server_cache, expected in [
        ({"mode": "exact", "threshold": 0.9}, None, "models[0].cache.threshold: only for mode 'semantic'"),
        ({"mode": "fuzzy"}, None, "models[0].cache.mode"),
        ({"mode": "semantic", "threshold": 1.5}, None, "models[0].cache.threshold"),
        ({"scope": "org"}, None, "models[0].cache.scope"),
        ({"ttl": 0}, None, "models[0].cache.ttl"),
        ({"mode": "exact", "size": 3}, None, "models[0].cache.size"),
        ({}, {"backend": "redis", "url": "http://x"}, "server.cache.url: expected a redis://"),
        ({}, {"max_bytes": 10}, "server.cache.max_bytes"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_dict(_config(cache, server_cache))
        assert expected in str(caught.value), str(caught.value)
