"""The ``anthropic`` adapter as pure translation, checked against golden fixtures from the API reference."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers import BUILTIN_PROVIDERS, get_adapter
from stellwerk.providers.anthropic import AnthropicAdapter
from stellwerk.providers.base import Endpoint

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "sk-ant-api03-secret-0123456789"
NOW = 1700000000.0


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def deployment(**fields: Any) -> DeploymentConfig:
    values: dict[str, Any] = {"id": "claude", "provider": "anthropic", "model": "claude-sonnet-4-5",
                              "api_base": "http://up.test/", "api_key": KEY}
    values.update(fields)
    return DeploymentConfig(**values)


def adapter() -> AnthropicAdapter:
    return AnthropicAdapter(clock=lambda: NOW)


def endpoint(dep: DeploymentConfig | None = None) -> Endpoint:
    return adapter().endpoint(dep or deployment())


def wire(body: dict[str, Any], stream: bool = False, dep: DeploymentConfig | None = None) -> dict[str, Any]:
    dep = dep or deployment()
    request = adapter().chat_request(dep, endpoint(dep), body, stream)
    data: dict[str, Any] = orjson.loads(request.body)
    return data


# -- registry and endpoint -------------------------------------------------------------------------------------------
def test_registered() -> None:
    assert "anthropic" in BUILTIN_PROVIDERS
    assert get_adapter("anthropic").name == "anthropic"


def test_endpoint_urls_headers_and_secrets() -> None:
    ep = endpoint(deployment(headers={"anthropic-beta": "prompt-caching-2024-07-31"}))
    assert ep.chat_url == "http://up.test/v1/messages"
    assert ep.models_url == "http://up.test/v1/models"
    headers = dict(ep.headers)
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["content-type"] == "application/json"
    assert headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert KEY in ep.secrets
    assert b"accept: application/json" in ep.json_headers and b"accept: text/event-stream" in ep.sse_headers


def test_endpoint_default_base_and_version_override() -> None:
    ep = endpoint(deployment(api_base=None, api_key=None, headers={"Anthropic-Version": "2024-01-01"}))
    assert ep.chat_url == "https://api.anthropic.com/v1/messages"
    versions = [v for k, v in ep.headers if k == "anthropic-version"]
    assert versions == ["2024-01-01"]
    assert "x-api-key" not in dict(ep.headers)


# -- requests --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("request_*.json")))
def test_request_golden(name: str) -> None:
    case = fixture(name)
    stream = case.get("stream", False)
    dep = deployment()
    request = adapter().chat_request(dep, endpoint(dep), case["openai"], stream)
    assert request.method == "POST" and request.url == "http://up.test/v1/messages"
    assert request.headers == (endpoint(dep).sse_headers if stream else endpoint(dep).json_headers)
    assert orjson.loads(request.body) == case["anthropic"]


def test_request_default_max_tokens_from_deployment() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}
    assert wire(body, dep=deployment(default_max_tokens=321))["max_tokens"] == 321


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    ("auto", None, {"type": "auto"}),
    ("none", False, {"type": "none"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (None, None, {"type": "auto"}),
    ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
])
def test_request_tool_choice(choice: Any, parallel: Any, expected: Any) -> None:
    body: dict[str, Any] = {"model": "chat", "messages": [{"role": "user", "content": "Hi"}],
                            "tools": [{"type": "function", "function": {"name": "f"}}]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert wire(body).get("tool_choice") == expected


def test_request_json_object_instruction_and_prefill() -> None:
    body = {"model": "chat", "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": "List two colours"}, {"role": "assistant", "content": "{ \n"}]}
    data = wire(body)
    assert data["system"] == "Answer with a single valid JSON object and nothing else."
    assert data["messages"][-1] == {"role": "assistant", "content": "{"}  # Anthropic refuses trailing whitespace
    body["messages"][-1]["content"] = [{"type": "text", "text": "a "}, {"type": "text", "text": " "}]
    assert wire(body)["messages"][-1] == {"role": "assistant", "content": "a"}
    body["messages"][-1]["content"] = "  "
    assert wire(body)["messages"] == [{"role": "user", "content": "List two colours"}]


@pytest.mark.parametrize(("message", "outcome", "status"), [
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA==", "format": "wav"}}]},
     Outcome.MOVE_ON, None),
    ({"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}, Outcome.MOVE_ON, None),
    ({"role": "function", "name": "f", "content": "x"}, Outcome.MOVE_ON, None),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}]},
     Outcome.MOVE_ON, None),
    ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,!!"}}]},
     Outcome.CLIENT_ERROR, 400),
    ({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}]}, Outcome.CLIENT_ERROR, 400),
])
def test_request_untranslatable(message: dict[str, Any], outcome: Outcome, status: int | None) -> None:
    with pytest.raises(UpstreamError) as info:
        wire({"model": "chat", "messages": [message]})
    assert info.value.outcome is outcome
    assert info.value.upstream_status == status


def test_request_n_above_one_moves_on() -> None:
    with pytest.raises(UpstreamError) as info:
        wire({"model": "chat", "n": 2, "messages": [{"role": "user", "content": "Hi"}]})
    assert info.value.outcome is Outcome.MOVE_ON


# -- complete answers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("response_*.json")))
def test_response_golden(name: str) -> None:
    case = fixture(name)
    data, raw = adapter().chat_response(deployment(), orjson.dumps(case["anthropic"]))
    assert raw is None
    assert data == case["openai"]


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"), ("refusal", "content_filter"),
    (None, "stop"),
])
def test_response_stop_reasons(stop_reason: str | None, finish: str) -> None:
    message = {**fixture("response_text.json")["anthropic"], "stop_reason": stop_reason}
    data, _ = adapter().chat_response(deployment(), orjson.dumps(message))
    assert data["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(("body", "outcome"), [
    (b"{not json", Outcome.RETRY_HERE),
    (b"[1, 2]", Outcome.RETRY_HERE),
    (b'{"type": "message", "content": null}', Outcome.RETRY_HERE),
    (b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', Outcome.RETRY_HERE),
])
def test_response_malformed(body: bytes, outcome: Outcome) -> None:
    with pytest.raises(UpstreamError) as info:
        adapter().chat_response(deployment(), body)
    assert info.value.outcome is outcome


# -- streams ---------------------------------------------------------------------------------------------------------
def decode(data: bytes, cuts: list[int] | None = None) -> tuple[list[dict[str, Any]], bool]:
    decoder = adapter().stream_decoder(deployment())
    pieces = [data[a:b] for a, b in itertools.pairwise([0, *sorted(cuts or []), len(data)])]
    chunks = [chunk for piece in pieces for chunk in decoder.feed(piece)]
    assert all(raw is None for _, raw in chunks)
    return [c for c, _ in chunks], decoder.done


@pytest.mark.parametrize("name", ["stream_text", "stream_tool_use"])
def test_stream_golden(name: str) -> None:
    chunks, done = decode((FIXTURES / f"{name}.sse").read_bytes())
    assert chunks == fixture(f"{name}.json")["chunks"]
    assert done


@settings(max_examples=100, deadline=None, database=None)
@given(cuts=st.lists(st.integers(0, len((FIXTURES / "stream_tool_use.sse").read_bytes())), max_size=12),
       crlf=st.booleans())
@example(cuts=[1862, 1862], crlf=False)  # an empty read between the two newlines that end the last event
def test_stream_any_split(cuts: list[int], crlf: bool) -> None:
    """However the bytes are split across reads (and with CRLF line ends), the same chunks come out."""
    data = (FIXTURES / "stream_tool_use.sse").read_bytes()
    if crlf:
        data = data.replace(b"\n", b"\r\n")
        cuts = [c * 2 for c in cuts if c * 2 <= len(data)]
    chunks, done = decode(data, cuts)
    assert chunks == fixture("stream_tool_use.json")["chunks"] and done


def test_stream_error_event_before_content_raises_classified() -> None:
    """An overloaded error right after message_start comes before any chunk, so the router can still fail over."""
    decoder = adapter().stream_decoder(deployment())
    events = (FIXTURES / "stream_overloaded.sse").read_bytes().split(b"\n\n")
    assert decoder.feed(events[0] + b"\n\n" + events[1] + b"\n\n") == []
    with pytest.raises(UpstreamError) as info:
        decoder.feed(events[2] + b"\n\n")
    assert info.value.outcome is Outcome.RETRY_HERE
    assert info.value.upstream_status == 529 and info.value.error_type == "overloaded_error"
    assert info.value.message == "Overloaded"


def test_stream_malformed_event() -> None:
    decoder = adapter().stream_decoder(deployment())
    with pytest.raises(UpstreamError) as info:
        decoder.feed(b"event: content_block_delta\ndata: {cut off\n\n")
    assert info.value.outcome is Outcome.RETRY_HERE


def test_stream_ignores_thinking_and_unknown_events() -> None:
    decoder = adapter().stream_decoder(deployment())
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "x"}},
        {"type": "some_future_event"},
    ]
    data = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)
    assert decoder.feed(data) == []
    assert not decoder.done


def test_stream_message_delta_updates_input_usage() -> None:
    decoder = adapter().stream_decoder(deployment())
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
         "usage": {"input_tokens": 7, "cache_read_input_tokens": 2, "output_tokens": 9}},
    ]
    data = b"".join(b"data: %s\n\n" % orjson.dumps(e) for e in events)  # event names are optional here
    finish, usage = (c for c, _ in decoder.feed(data))
    assert finish["choices"][0] == {"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": "length"}
    assert usage["usage"] == {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18,
                              "prompt_tokens_details": {"cached_tokens": 2}}


# -- errors ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", fixture("errors.json")["cases"], ids=lambda c: c["name"])
def test_error_golden(case: dict[str, Any]) -> None:
    body = case["body"] if isinstance(case["body"], str) else json.dumps(case["body"])
    err = adapter().classify(case["status"], case["headers"], body.encode())
    assert err.outcome.value == case["outcome"]
    assert err.upstream_status == case["status"]
    assert err.retry_after == case.get("retry_after")
    if "error_type" in case:
        assert err.error_type == case["error_type"]
    if isinstance(case["body"], dict):
        assert err.message == case["body"]["error"]["message"]
    else:
        assert "502 Bad Gateway" in err.message
    if err.outcome is Outcome.CLIENT_ERROR:
        assert err.status == case["status"]  # passed back to the client with the upstream's status


def test_embeddings_move_on() -> None:
    dep = deployment()
    with pytest.raises(UpstreamError, match="does not offer embeddings") as info:
        adapter().embeddings_request(dep, endpoint(dep), {"model": "e", "input": "x"})
    assert info.value.outcome is Outcome.MOVE_ON
    with pytest.raises(UpstreamError):
        adapter().embeddings_response(dep, b"{}")


@pytest.mark.parametrize(("effort", "sent"), [("low", "low"), ("high", "high"), ("minimal", "low"), ("xhigh", "high")])
def test_reasoning_effort_becomes_output_config_effort(effort: str, sent: str) -> None:
    from stellwerk.providers.anthropic.request import to_messages_request

    schema = {"type": "object", "properties": {}, "required": []}
    wire = to_messages_request({"model": "chat", "messages": [{"role": "user", "content": "hi"}],
                                "reasoning_effort": effort,
                                "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}},
                               deployment(), stream=False)
    assert wire["output_config"] == {"format": {"type": "json_schema", "schema": schema}, "effort": sent}
