"""The front door's translations (Anthropic request → canonical, canonical answer → Anthropic), golden and
round-trip: an OpenAI request sent through the ``anthropic`` provider's translation and back through the
front door's keeps its messages, roles, tool calls and parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stellwerk.config import DeploymentConfig
from stellwerk.errors import InvalidRequestError
from stellwerk.providers.anthropic.inbound import to_chat_request
from stellwerk.providers.anthropic.outbound import MessageEvents, error_body, to_message
from stellwerk.providers.anthropic.request import to_messages_request
from stellwerk.providers.anthropic.wire import anthropic_usage, error_type_for
from stellwerk.validate import validate_chat

FIXTURES = Path(__file__).parent / "fixtures"
DEPLOYMENT = DeploymentConfig(id="claude", provider="anthropic", model="chat")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


# -- golden ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("front_request_*.json")))
def test_inbound_golden(name: str) -> None:
    case = fixture(name)
    body, stream = to_chat_request(case["anthropic"])
    assert body == case["openai"]
    assert stream is (case["anthropic"].get("stream") is True)
    validate_chat(body)  # what the front door hands the router is a valid canonical request


def test_outbound_message_golden() -> None:
    case = fixture("front_response_tool_use.json")
    usage = case["openai"]["usage"]
    message = to_message(case["openai"], "msg_rid", "chat", anthropic_usage(
        usage["prompt_tokens"], usage["completion_tokens"], usage["prompt_tokens_details"]["cached_tokens"]))
    assert message == case["anthropic"]


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
    ("content_filter", "refusal"), (None, "end_turn"),
])
def test_outbound_stop_reasons(finish: str | None, stop_reason: str) -> None:
    data = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish}]}
    assert to_message(data, "m", "chat", anthropic_usage(1, 1, 0))["stop_reason"] == stop_reason


def test_outbound_refusal_parts_and_bad_arguments() -> None:
    data = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "I can't help with that.",
                                     "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "not json"}}]},
                         "finish_reason": "content_filter"}]}
    content = to_message(data, "m", "chat", anthropic_usage(1, 1, 0))["content"]
    assert content == [{"type": "text", "text": "I can't help with that."},
                       {"type": "tool_use", "id": "c", "name": "f", "input": {}}]
    parts = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]}
    assert to_message(parts, "m", "chat", anthropic_usage(1, 1, 0))["content"] == [{"type": "text", "text": "ab"}]


def parse_events(data: bytes) -> list[dict[str, Any]]:
    """Anthropic SSE bytes → event dicts, checking each ``event:`` name matches its data's ``type``."""
    events = []
    for block in data.decode().split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert name_line == f"event: {event['type']}"
        events.append(event)
    return events


def test_events_golden() -> None:
    case = fixture("front_stream_tool_use.json")
    events = MessageEvents("msg_rid", "chat", case["input_tokens_estimate"])
    out = events.start() + b"".join(events.feed(c) for c in case["chunks"])
    usage = case["usage"]
    out += events.finish(usage["completion_tokens"])
    parsed = parse_events(out)
    assert parsed == case["events"]
    # message_delta repeats message_start's input figure (not the upstream's 30, known only at the end)
    assert parsed[-2]["usage"]["input_tokens"] == parsed[0]["message"]["usage"]["input_tokens"] == 12


def test_events_empty_answer_and_error() -> None:
    events = MessageEvents("msg_1", "chat", 0)
    out = parse_events(events.start() + events.feed({"choices": [{"delta": {}, "finish_reason": "length"}]})
                       + events.finish(0))
    assert [e["type"] for e in out] == ["message_start", "message_delta", "message_stop"]
    assert out[1]["delta"]["stop_reason"] == "max_tokens"
    assert parse_events(events.error(529, "Overloaded")) == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}]


@pytest.mark.parametrize(("status", "etype"), [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"), (404, "not_found_error"),
    (405, "invalid_request_error"), (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
    (502, "api_error"), (503, "overloaded_error"), (504, "timeout_error"), (529, "overloaded_error"),
])
def test_error_types(status: int, etype: str) -> None:
    assert error_type_for(status) == etype
    assert error_body(status, "m") == {"type": "error", "error": {"type": etype, "message": "m"}}


# -- validation ------------------------------------------------------------------------------------------------------
USER = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(("body", "param", "words"), [
    ([], None, "JSON object"),
    ({"max_tokens": 5, "messages": USER}, "model", "Field required"),
    ({"model": 3, "max_tokens": 5, "messages": USER}, "model", "non-empty string"),
    ({"model": "chat", "messages": USER}, "max_tokens", "Field required"),
    ({"model": "chat", "max_tokens": 0, "messages": USER}, "max_tokens", "at least 1"),
    ({"model": "chat", "max_tokens": "5", "messages": USER}, "max_tokens", "integer"),
    ({"model": "chat", "max_tokens": 5}, "messages", "Field required"),
    ({"model": "chat", "max_tokens": 5, "messages": []}, "messages", "non-empty array"),
    ({"model": "chat", "max_tokens": 5, "messages": ["hi"]}, "messages[0]", "object"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role", "'user'"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user"}]}, "messages[0].content", "Field required"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
     "messages[0].content[0].type", "'video'"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content[0].text", "string"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA=="}}]}]},
     "messages[0].content[0].source.media_type", "image/png"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}, "messages[0].content[0].source", "base64"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}}]}]},
     "messages[0].content[0].source", "PDF"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "messages[0].content[0].tool_use_id", "Field required"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "x"}]}]}, "messages[0].content[0].input", "object"),
    ({"model": "chat", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "image"}]}]},
     "messages[0].content[0].type", "tool_use"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "temperature": 1.5}, "temperature", "between 0 and 1"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "stop_sequences": "x"}, "stop_sequences", "array"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "system": 5}, "system", "string"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "system": [{"type": "image"}]}, "system[0]", "text block"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "metadata": []}, "metadata", "object"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "stream": "yes"}, "stream", "boolean"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "tools": {}}, "tools", "array"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "tools": [{"name": "f"}]}, "tools[0].input_schema", "schema"),
    ({"model": "chat", "max_tokens": 5, "messages": USER,
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type", "server tool"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "tool_choice": {"type": "sometimes"}}, "tool_choice.type", "auto"),
    ({"model": "chat", "max_tokens": 5, "messages": USER, "tool_choice": {"type": "tool"}}, "tool_choice.name", "name"),
])
def test_validation_names_the_field(body: Any, param: str | None, words: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        to_chat_request(body)
    assert info.value.param == param
    assert words in info.value.message
    if param is not None:
        assert info.value.message.startswith(f"{param}: ")


def test_count_only_needs_no_max_tokens() -> None:
    body, stream = to_chat_request({"model": "chat", "messages": USER, "system": ""}, count_only=True)
    assert body == {"model": "chat", "messages": USER} and not stream


def test_system_role_message_stays_in_place() -> None:
    body, _ = to_chat_request({"model": "chat", "max_tokens": 5, "messages": [
        *USER, {"role": "system", "content": [{"type": "text", "text": "Now in French."}]}]})
    assert body["messages"][1] == {"role": "system", "content": [{"type": "text", "text": "Now in French."}]}


# -- round trip ------------------------------------------------------------------------------------------------------
texts = st.text(min_size=1, max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
arguments = st.dictionaries(names, st.one_of(st.integers(-5, 5), st.text(max_size=4), st.booleans()), max_size=3)
images = st.one_of(st.just("https://example.com/cat.png"), st.just("data:image/png;base64,iVBORw0KGgo="))
parts = st.one_of(texts.map(lambda t: {"type": "text", "text": t}),
                  images.map(lambda u: {"type": "image_url", "image_url": {"url": u}}))


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Realistic OpenAI conversations: system prompts, user turns, assistant text and/or tool calls, tool results."""
    messages: list[dict[str, Any]] = [
        {"role": draw(st.sampled_from(["system", "developer"])), "content": t} for t in draw(st.lists(texts, max_size=2))]
    call_ids = iter(range(1000))
    for _ in range(draw(st.integers(1, 3))):
        content = draw(st.one_of(texts, st.lists(parts, min_size=1, max_size=3)))
        messages.append({"role": "user", "content": content})
        if draw(st.booleans()):
            messages.append({"role": "user", "content": draw(texts)})  # two user messages in a row: merged
        calls = [{"id": f"call_{next(call_ids)}", "type": "function",
                  "function": {"name": draw(names), "arguments": orjson.dumps(draw(arguments)).decode()}}
                 for _ in range(draw(st.integers(0, 2)))]
        assistant: dict[str, Any] = {"role": "assistant", "content": draw(st.one_of(texts, st.none()) if calls else texts)}
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        messages += [{"role": "tool", "tool_call_id": c["id"], "content": draw(texts)} for c in calls]
    if draw(st.booleans()):
        messages.append({"role": "user", "content": draw(texts)})
    return messages


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "chat", "messages": draw(conversations()),
                            "max_tokens": draw(st.integers(1, 100_000))}
    optional = {
        "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(0, 500),
        "stop": st.one_of(texts, st.lists(texts, min_size=1, max_size=3)), "user": texts,
        "tools": st.lists(st.builds(lambda n, d, p: {"type": "function", "function": {
            "name": n, "description": d, "parameters": {"type": "object", "properties": p}}},
            names, texts, st.dictionaries(names, st.just({"type": "string"}), max_size=2)), min_size=1, max_size=3,
            unique_by=lambda t: t["function"]["name"]),
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            body[name] = draw(strategy)
    if "tools" in body:
        body["tool_choice"] = draw(st.sampled_from(
            ["auto", "none", "required", {"type": "function", "function": {"name": body["tools"][0]["function"]["name"]}}]))
        body["parallel_tool_calls"] = draw(st.booleans())
    return body


def normalized(body: dict[str, Any]) -> dict[str, Any]:
    """What a round trip must keep: system texts; the sequence of (role, item) of the conversation, where
    consecutive turns of one role may merge; tool calls with parsed arguments; the parameters."""
    system: list[str] = []
    items: list[tuple[Any, ...]] = []
    for message in body["messages"]:
        role, content = message["role"], message.get("content")
        chunks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        if role in ("system", "developer"):
            system += [p["text"] for p in chunks]
            continue
        for part in chunks:
            items.append((role, "image", part["image_url"]["url"]) if part["type"] == "image_url" else
                         (role, "text", part["text"]) if role != "tool" else (role, message["tool_call_id"], part["text"]))
        items += [(role, "call", c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"] or "{}"))
                  for c in message.get("tool_calls") or ()]
    if body["messages"][-1]["role"] == "assistant":  # a final assistant turn is a prefill: trimmed
        while items and items[-1][:2] == ("assistant", "text") and not items[-1][2].rstrip():
            items.pop()
        if items and items[-1][:2] == ("assistant", "text"):
            items[-1] = (*items[-1][:2], items[-1][2].rstrip())
    params = {k: v for k, v in body.items() if k in ("max_tokens", "temperature", "top_p", "top_k", "user", "tools")}
    if "stop" in body:
        params["stop"] = [body["stop"]] if isinstance(body["stop"], str) else body["stop"]
    if "tools" in body:
        params["tool_choice"] = body.get("tool_choice", "auto")
        params["parallel_tool_calls"] = body.get("parallel_tool_calls", True) or params["tool_choice"] == "none"
    return {"system": system, "items": items, "params": params}


@settings(max_examples=200, deadline=None, database=None)
@given(body=requests())
def test_round_trip_openai_anthropic_openai(body: dict[str, Any]) -> None:
    validate_chat(body)
    wire = to_messages_request(body, DEPLOYMENT, stream=False)
    back, stream = to_chat_request(orjson.loads(orjson.dumps(wire)))
    assert not stream
    validate_chat(back)
    assert normalized(back) == normalized(body)
