"""The sim speaking Anthropic Messages: golden shapes over plain HTTP, then the official SDK if it is installed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sim_support import KEY, WEATHER_ARGS, chat_request, running, sse_events

from stellwerk.sim import reply_words
from support import GUARD

TEXT = " ".join(reply_words(8, 3))


async def test_non_stream_message() -> None:
    async with running("anthropic") as (_, client):
        path, body = chat_request("anthropic")
        resp = await client.post(path, json=body)
        assert resp.status_code == 200 and resp.headers["request-id"].startswith("req_")
        message = resp.json()
        assert message["id"].startswith("msg_") and (message["type"], message["role"]) == ("message", "assistant")
        assert message["content"] == [{"type": "text", "text": TEXT}]
        assert (message["stop_reason"], message["stop_sequence"], message["model"]) == ("end_turn", None, "m")
        assert (message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (7, 8)
        resp = await client.post(path, json={**body, "max_tokens": 3})
        assert resp.json()["stop_reason"] == "max_tokens"
        assert resp.json()["content"][0]["text"] == " ".join(reply_words(3, 3))


async def test_stream_events_in_order() -> None:
    async with running("anthropic") as (_, client):
        path, body = chat_request("anthropic", stream=True)
        resp = await client.post(path, json=body)
        assert resp.headers["content-type"] == "text/event-stream"
        events = sse_events(resp.content)
        names = [name for name, _ in events]
        assert names == [
            "message_start", "content_block_start", "ping", *["content_block_delta"] * 8, "content_block_stop",
            "message_delta", "message_stop",
        ]  # fmt: skip
        assert all(data["type"] == name for name, data in events)
        start = events[0][1]["message"]
        assert (start["content"], start["stop_reason"], start["usage"]["input_tokens"]) == ([], None, 7)
        assert events[1][1]["content_block"] == {"type": "text", "text": ""}
        assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == TEXT
        assert {d["delta"]["type"] for n, d in events if n == "content_block_delta"} == {"text_delta"}
        delta = events[-2][1]
        assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
        assert delta["usage"] == {"output_tokens": 8}


async def test_tool_use_non_stream_and_stream() -> None:
    async with running("anthropic") as (_, client):
        path, body = chat_request("anthropic", tools=True)
        message = (await client.post(path, json=body)).json()
        assert message["stop_reason"] == "tool_use"
        (block,) = message["content"]
        assert (block["type"], block["name"], block["input"]) == ("tool_use", "get_weather", WEATHER_ARGS)
        assert block["id"].startswith("toolu_")
        events = sse_events((await client.post(path, json={**body, "stream": True})).content)
        started = events[1][1]["content_block"]
        assert (started["type"], started["name"], started["input"]) == ("tool_use", "get_weather", {})
        assert started["id"].startswith("toolu_")
        deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
        assert {d["type"] for d in deltas} == {"input_json_delta"}
        assert orjson.loads("".join(d["partial_json"] for d in deltas)) == WEATHER_ARGS
        assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
        other = {"name": "noop", "input_schema": {"type": "object"}}
        forced = {**body, "tools": [other, *body["tools"]], "tool_choice": {"type": "tool", "name": "get_weather"}}
        assert (await client.post(path, json=forced)).json()["content"][0]["name"] == "get_weather"
        none = {**body, "tool_choice": {"type": "none"}}
        assert (await client.post(path, json=none)).json()["content"][0]["type"] == "text"
        missing = {**body, "tool_choice": {"type": "tool", "name": "nope"}}
        assert (await client.post(path, json=missing)).status_code == 400


async def test_count_tokens_and_models() -> None:
    async with running("anthropic") as (_, client):
        _, body = chat_request("anthropic")
        del body["max_tokens"]
        assert (await client.post("/v1/messages/count_tokens", json=body)).json() == {"input_tokens": 7}
        models = (await client.get("/v1/models")).json()
        assert [m["id"] for m in models["data"]] == ["sim-model"] and models["has_more"] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"messages": []}, "messages: at least one message is required"),
        ({"model": None}, "model: Field required"),
    ],
)
async def test_invalid_requests(change: dict[str, Any], message: str) -> None:
    async with running("anthropic") as (sim, client):
        path, body = chat_request("anthropic")
        body = {k: v for k, v in {**body, **change}.items() if v is not None}
        resp = await client.post(path, json=body)
        assert resp.status_code == 400
        assert resp.json() == {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        assert sim.stats.invalid == 1


async def test_auth_and_version_header() -> None:
    async with running("anthropic") as (_, client):
        path, body = chat_request("anthropic")
        resp = await client.post(path, json=body, headers={"x-api-key": "wrong"})
        assert resp.status_code == 401
        assert resp.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
        bearer = {"authorization": f"Bearer {KEY}", "anthropic-version": "2023-06-01"}
        client.headers.pop("x-api-key")
        assert (await client.post(path, json=body, headers=bearer)).status_code == 200
        resp = await client.post(path, json=body, headers={"anthropic-version": "2023-06-01"})
        assert resp.status_code == 401 and resp.json()["error"]["message"] == "x-api-key header is required"
        client.headers.pop("anthropic-version")
        resp = await client.post(path, json=body, headers={"x-api-key": KEY})
        assert resp.status_code == 400 and "anthropic-version" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "type_"), [(529, "overloaded_error"), (500, "api_error"), (503, "api_error"), (413, "request_too_large")]
)
async def test_injected_errors(status: int, type_: str) -> None:
    async with running("anthropic", error_rate=1.0, error_statuses=(status,)) as (_, client):
        path, body = chat_request("anthropic")
        resp = await client.post(path, json=body)
        assert resp.status_code == status
        assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == type_


async def test_rate_limit_context_window_and_refusal() -> None:
    async with running("anthropic", rate_limit_rate=1.0, retry_after_s=2.5) as (sim, client):
        path, body = chat_request("anthropic")
        resp = await client.post(path, json=body)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "3"
        assert resp.json()["error"]["type"] == "rate_limit_error"
        assert resp.headers["anthropic-ratelimit-requests-remaining"] == "0"
        sim.update(rate_limit_rate=0.0, context_window=5)
        resp = await client.post(path, json=body)
        assert resp.status_code == 400
        assert resp.json()["error"] == {"type": "invalid_request_error", "message": "prompt is too long: 7 tokens > 5 maximum"}
        sim.update(context_window=0, content_policy_trigger="TRAINS")
        message = (await client.post(path, json=body)).json()
        assert (message["stop_reason"], message["content"]) == ("refusal", [])
        events = sse_events((await client.post(path, json={**body, "stream": True})).content)
        assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]
        assert events[2][1]["delta"]["stop_reason"] == "refusal"
        assert sim.stats.content_policy == 2


async def test_mid_stream_error_event_and_malformed_event() -> None:
    async with running("anthropic", stream_error_rate=1.0, error_statuses=(529,), output_tokens=40) as (sim, client):
        path, body = chat_request("anthropic", stream=True)
        resp = await client.post(path, json=body)
        assert resp.status_code == 200
        events = sse_events(resp.content)
        assert events[0][0] == "message_start" and "message_stop" not in [n for n, _ in events]
        assert events[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        sim.update(stream_error_rate=0.0, malformed_rate=1.0)
        raw = (await client.post(path, json=body)).content
        assert raw.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        with pytest.raises(orjson.JSONDecodeError):
            sse_events(raw)


# -- the official SDK -------------------------------------------------------------------------------------------------
async def test_sdk_round_trip() -> None:
    anthropic = pytest.importorskip("anthropic")
    _, body = chat_request("anthropic", tools=True)
    messages, tools = body["messages"], body["tools"]
    async with running("anthropic") as (sim, _):
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0, timeout=GUARD)
        async with client:
            message = await client.messages.create(model="m", max_tokens=100, messages=messages)
            assert message.content[0].text == TEXT and message.usage.output_tokens == 8
            async with client.messages.stream(model="m", max_tokens=100, messages=messages) as stream:
                assert await stream.get_final_text() == TEXT
            async with client.messages.stream(model="m", max_tokens=100, messages=messages, tools=tools) as stream:
                final = await stream.get_final_message()
            assert final.stop_reason == "tool_use" and final.content[0].input == WEATHER_ARGS
            count = await client.messages.count_tokens(model="m", messages=messages)
            assert count.input_tokens == 7


async def test_sdk_errors() -> None:
    anthropic = pytest.importorskip("anthropic")
    messages: Any = [{"role": "user", "content": "hi"}]
    async with running("anthropic", rate_limit_rate=1.0, retry_after_s=2) as (sim, _):
        client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0, timeout=GUARD)
        async with client:
            with pytest.raises(anthropic.RateLimitError) as info:
                await client.messages.create(model="m", max_tokens=10, messages=messages)
            assert info.value.response.headers["retry-after"] == "2"
            sim.update(rate_limit_rate=0.0, error_rate=1.0, error_statuses=[529])
            with pytest.raises(anthropic.APIStatusError) as status:
                await client.messages.create(model="m", max_tokens=10, messages=messages)
            assert status.value.status_code == 529
            sim.update(error_rate=0.0, stream_error_rate=1.0)
            with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
                async with client.messages.stream(model="m", max_tokens=10, messages=messages) as stream:
                    await stream.get_final_message()
            sim.update(stream_error_rate=0.0, context_window=1)
            with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
                await client.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x" * 40}])
