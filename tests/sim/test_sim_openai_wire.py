"""OpenAI wire bodies: request parsing and golden shapes of responses, chunks and errors."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stellwerk.sim import openai_errors as errors
from stellwerk.sim import openai_wire as wire
from stellwerk.sim.content import embedding, reply_words, schema_example


def chat_body(**extra: Any) -> bytes:
    return orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 40}], **extra})


def test_parse_chat_summarises_the_request() -> None:
    tools = [{"type": "function", "function": {"name": "a"}}, {"type": "function", "function": {"name": "b"}}]
    chat = wire.parse_chat(
        chat_body(stream=True, stream_options={"include_usage": True}, max_tokens=5, tools=tools,
                  tool_choice={"type": "function", "function": {"name": "b"}}),
    )  # fmt: skip
    assert (chat.model, chat.stream, chat.include_usage, chat.max_tokens) == ("m", True, True, 5)
    assert chat.prompt_tokens == 10
    assert chat.tool_name == "b"
    assert wire.parse_chat(chat_body(tools=tools, tool_choice="none")).tool_name is None
    assert wire.parse_chat(chat_body(tools=tools)).tool_name == "a"


def test_parse_chat_counts_text_parts_and_finds_the_trigger() -> None:
    content = [{"type": "text", "text": "abcd" * 3}, {"type": "text", "text": "the Forbidden word"}]
    chat = wire.parse_chat(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]}), "forbidden")
    assert chat.flagged and chat.prompt_tokens == 8
    assert not wire.parse_chat(chat_body(), "forbidden").flagged


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (b"{not json", None, None),
        (orjson.dumps({"messages": []}), None, None),
        (orjson.dumps({"model": "m"}), "messages", "missing_required_parameter"),
        (orjson.dumps({"model": "m", "messages": "hi"}), "messages", "invalid_type"),
        (orjson.dumps({"model": "m", "messages": []}), "messages", "empty_array"),
        (chat_body(max_tokens=0), "max_tokens", "integer_below_min_value"),
        (chat_body(max_completion_tokens="5"), "max_completion_tokens", "invalid_type"),
    ],
)
def test_parse_chat_rejects_with_openai_errors(body: bytes, param: str | None, code: str | None) -> None:
    with pytest.raises(errors.WireError) as info:
        wire.parse_chat(body)
    error = orjson.loads(info.value.body())["error"]
    assert info.value.status == 400
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_chat_completion_golden_shape() -> None:
    body = orjson.loads(wire.chat_completion("chatcmpl-1", 7, "gpt", "hi there", "stop", 3, 2))
    assert list(body) == [
        "id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint",
    ]  # fmt: skip
    assert body["object"] == "chat.completion"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi there", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (3, 2, 5)


def test_tool_call_completion_has_null_content() -> None:
    body = orjson.loads(wire.chat_completion("c", 1, "m", None, "tool_calls", 1, 1, ("call_1", "f", "{}")))
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


def events(raw: bytes) -> list[Any]:
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ")
        data = block[len(b"data: ") :]
        out.append(data.decode() if data == b"[DONE]" else orjson.loads(data))
    return out


def test_stream_chunks_golden_shape_with_usage() -> None:
    w = wire.ChunkWriter("chatcmpl-9", 5, "gpt", include_usage=True)
    raw = w.role() + w.content("Hi") + w.finish("stop") + w.usage(4, 1) + wire.DONE
    role, content, finish, usage, done = events(raw)
    assert role == {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "gpt",
        "service_tier": "default",
        "system_fingerprint": "fp_sim",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None,
             "finish_reason": None}
        ],
        "usage": None,
    }  # fmt: skip
    assert content["choices"][0]["delta"] == {"content": "Hi"}
    assert finish["choices"] == [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 5
    assert done == "[DONE]"


def test_stream_chunks_without_usage_have_no_usage_key() -> None:
    w = wire.ChunkWriter("c", 5, "gpt", include_usage=False)
    assert all("usage" not in e for e in events(w.role() + w.content("x") + w.finish("length")))


def test_tool_call_deltas() -> None:
    w = wire.ChunkWriter("c", 5, "m", include_usage=False)
    start, args = events(w.tool_start("call_1", "get_weather") + w.tool_arguments('{"a'))
    assert start["choices"][0]["delta"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}],
        "refusal": None,
    }
    assert args["choices"][0]["delta"] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"a'}}]}


def test_broken_event_does_not_parse() -> None:
    w = wire.ChunkWriter("c", 5, "m", include_usage=False)
    with pytest.raises(orjson.JSONDecodeError):
        events(w.broken())


def test_errors_use_openai_shapes() -> None:
    body, headers = errors.rate_limit_error("gpt", 1.5, 500)
    assert orjson.loads(body)["error"]["code"] == "rate_limit_exceeded"
    assert dict(headers)["retry-after"] == "2"
    assert dict(headers)["x-ratelimit-remaining-requests"] == "0"
    assert orjson.loads(errors.server_error(502))["error"]["type"] == "cf_bad_gateway"
    assert orjson.loads(errors.server_error(503))["error"]["type"] == "server_error"
    assert orjson.loads(errors.context_length_error(10, 20))["error"]["code"] == "context_length_exceeded"
    assert orjson.loads(errors.content_policy_error())["error"]["code"] == "content_policy_violation"
    key = "sk-secret-key-1234567890"
    message = orjson.loads(errors.invalid_api_key(key))["error"]["message"]
    assert key not in message and "7890" in message


def test_embeddings_parse_and_encode() -> None:
    req = wire.parse_embeddings(orjson.dumps({"model": "e", "input": ["abcd", "efgh"], "encoding_format": "base64"}))
    assert req.base64 and req.prompt_tokens == 2
    assert wire.parse_embeddings(orjson.dumps({"model": "e", "input": [1, 2, 3]})).inputs == ((1, 2, 3),)
    with pytest.raises(errors.WireError):
        wire.parse_embeddings(orjson.dumps({"model": "e", "input": [None]}))
    vector = embedding("abcd", 8)
    body = orjson.loads(wire.embeddings_response("e", [vector], True, 1))
    decoded = struct.unpack("<8f", base64.b64decode(body["data"][0]["embedding"]))
    assert list(decoded) == vector
    assert body["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


def test_content_is_deterministic() -> None:
    assert reply_words(5, 1) == reply_words(5, 1)
    assert reply_words(3, 1) == reply_words(5, 1)[:3]
    assert reply_words(5, 1) != reply_words(5, 2)
    assert embedding("a", 16) == embedding("a", 16) != embedding("b", 16)
    assert sum(v * v for v in embedding("a", 64)) == pytest.approx(1.0, abs=1e-5)
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "n": {"type": "integer"}, "u": {"enum": ["c", "f"]}},
        "required": ["city", "n", "u"],
    }
    assert schema_example(schema) == {"city": "sim", "n": 1, "u": "c"}
    assert schema_example(None) == {}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
request_keys = st.sampled_from(
    ["model", "messages", "stream", "stream_options", "max_tokens", "tools", "tool_choice", "response_format",
     "input", "encoding_format", "dimensions"]
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(request_keys, json_values, max_size=6), st.sampled_from(["m", None]))
def test_parsers_raise_only_wire_errors(body: dict[str, Any], model: str | None) -> None:
    if model is not None:
        body["model"] = model
    raw = orjson.dumps(body)
    for parse in (wire.parse_chat, wire.parse_embeddings):
        try:
            parse(raw)
        except errors.WireError as exc:
            assert exc.status == 400
    try:
        chat = wire.parse_chat(raw)
    except errors.WireError:
        return
    orjson.dumps(schema_example(chat.tool_parameters))
    orjson.dumps(schema_example(chat.json_schema))
