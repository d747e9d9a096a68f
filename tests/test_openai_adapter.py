"""The ``openai`` / ``azure`` adapter as pure translation: wire requests, answers, SSE decoding, error classes."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers import BUILTIN_PROVIDERS, chunk_dict, get_adapter
from stellwerk.providers.openai import OpenAIAdapter, classify_error, parse_retry_after
from stellwerk.providers.sse import SSEParser
from stellwerk.redact import redact, summarize_body

KEY = "sk-adapter-secret-0123456789"
_DEP = DeploymentConfig(id="d", provider="openai", model="m")


def deployment(**fields: Any) -> DeploymentConfig:
    values: dict[str, Any] = {"id": "d", "provider": "openai", "model": "gpt-up", "api_base": "http://up.test/v1/",
                              "api_key": KEY}
    values.update(fields)
    return DeploymentConfig(**values)


BODY: dict[str, Any] = {
    "model": "chat", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}],
    "temperature": 0.3, "top_p": 0.9, "seed": 7, "stop": ["\n"], "logit_bias": {"42": -1},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto", "response_format": {"type": "json_object"}, "vendor_param": {"nested": [1, 2]},
}


def test_registry() -> None:
    assert {"azure", "openai"} <= set(BUILTIN_PROVIDERS)
    assert get_adapter("openai").name == "openai"
    assert get_adapter("azure").name == "azure"


# -- endpoints and requests ------------------------------------------------------------------------------------------
def test_openai_endpoint_urls_and_headers() -> None:
    adapter = OpenAIAdapter()
    endpoint = adapter.endpoint(deployment(headers={"OpenAI-Organization": "org-1"}))
    assert endpoint.chat_url == "http://up.test/v1/chat/completions"
    assert endpoint.embeddings_url == "http://up.test/v1/embeddings"
    assert endpoint.models_url == "http://up.test/v1/models"
    headers = dict(endpoint.headers)
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-1"
    assert headers["content-type"] == "application/json"
    assert KEY in endpoint.secrets and "org-1" in endpoint.secrets


def test_openai_default_base_and_no_key() -> None:
    endpoint = OpenAIAdapter().endpoint(deployment(api_base=None, api_key=None))
    assert endpoint.chat_url == "https://api.openai.com/v1/chat/completions"
    assert "authorization" not in dict(endpoint.headers)
    assert endpoint.secrets == ()


def test_azure_path_api_version_and_api_key_header() -> None:
    adapter = OpenAIAdapter(azure=True)
    dep = deployment(provider="azure", model="my-gpt4o", api_base="https://res.openai.azure.com/")
    endpoint = adapter.endpoint(dep)
    assert endpoint.chat_url == (
        "https://res.openai.azure.com/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21")
    assert endpoint.embeddings_url == (
        "https://res.openai.azure.com/openai/deployments/my-gpt4o/embeddings?api-version=2024-10-21")
    headers = dict(endpoint.headers)
    assert headers["api-key"] == KEY
    assert "authorization" not in headers
    custom = adapter.endpoint(deployment(provider="azure", api_base="https://r.test", api_version="2025-01-01"))
    assert custom.chat_url.endswith("/chat/completions?api-version=2025-01-01")
    wire = orjson.loads(adapter.chat_request(dep, endpoint, BODY, False).body)
    assert "model" not in wire  # the deployment is in the path
    assert wire == {k: v for k, v in BODY.items() if k != "model"}


def test_chat_request_passes_everything_through_but_the_model() -> None:
    adapter = OpenAIAdapter()
    dep = deployment()
    original = orjson.loads(orjson.dumps(BODY))
    wire = adapter.chat_request(dep, adapter.endpoint(dep), BODY, False)
    assert (wire.method, wire.url) == ("POST", "http://up.test/v1/chat/completions")
    assert orjson.loads(wire.body) == {**BODY, "model": "gpt-up"}
    assert b"accept: application/json\r\n" in bytes(wire.headers)  # type: ignore[arg-type]
    assert f"authorization: Bearer {KEY}\r\n".encode() in bytes(wire.headers)  # type: ignore[arg-type]
    assert original == BODY  # the caller's dict is not mutated


def test_non_stream_request_drops_stream_fields() -> None:
    adapter = OpenAIAdapter()
    dep = deployment()
    wire = orjson.loads(adapter.chat_request(dep, adapter.endpoint(dep), {**BODY, "stream": False}, False).body)
    assert "stream" not in wire and "stream_options" not in wire


@pytest.mark.parametrize(("client_options", "stream_usage", "expected"), [
    (None, True, {"include_usage": True}),
    ({"include_usage": False}, True, {"include_usage": True}),
    ({"include_usage": True, "other": 1}, True, {"include_usage": True, "other": 1}),
    (None, False, None),
    ({"include_usage": False}, False, {"include_usage": False}),
])
def test_stream_request_asks_for_usage(client_options: dict[str, Any] | None, stream_usage: bool,
                                       expected: dict[str, Any] | None) -> None:
    adapter = OpenAIAdapter()
    dep = deployment(stream_usage=stream_usage)
    body = {**BODY, "stream": True}
    if client_options is not None:
        body["stream_options"] = client_options
    wire = adapter.chat_request(dep, adapter.endpoint(dep), body, True)
    data = orjson.loads(wire.body)
    assert data["stream"] is True
    assert data.get("stream_options") == expected
    assert b"accept: text/event-stream\r\n" in bytes(wire.headers)  # type: ignore[arg-type]
    assert body.get("stream_options") == client_options  # not mutated


def test_embeddings_request() -> None:
    adapter = OpenAIAdapter()
    dep = deployment(model="text-embedding-3-small")
    body = {"model": "embed", "input": ["a"], "encoding_format": "base64", "dimensions": 8}
    wire = adapter.embeddings_request(dep, adapter.endpoint(dep), body)
    assert wire.url == "http://up.test/v1/embeddings"
    assert orjson.loads(wire.body) == {**body, "model": "text-embedding-3-small"}


# -- answers ----------------------------------------------------------------------------------------------------------
def test_chat_response_keeps_the_upstream_bytes() -> None:
    raw = orjson.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]})
    data, kept = OpenAIAdapter().chat_response(_DEP, raw)
    assert kept is raw
    assert data["choices"][0]["message"]["content"] == "hi"


@pytest.mark.parametrize("body", [b"{not json", b"[1]", b'{"id": "x"}', b"", b'{"choices": {}}'])
def test_malformed_answers_are_retryable(body: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        OpenAIAdapter().chat_response(_DEP, body)
    assert info.value.outcome is Outcome.RETRY_HERE


def test_error_payload_in_a_200_answer() -> None:
    with pytest.raises(UpstreamError) as info:
        OpenAIAdapter().chat_response(_DEP, b'{"error": {"message": "overloaded", "type": "server_error"}}')
    assert info.value.outcome is Outcome.RETRY_HERE
    assert info.value.message == "overloaded"


def test_embeddings_response() -> None:
    data, _ = OpenAIAdapter().embeddings_response(_DEP, b'{"data": [{"embedding": [1.0]}], "usage": {"prompt_tokens": 1}}')
    assert data["data"][0]["embedding"] == [1.0]
    with pytest.raises(UpstreamError):
        OpenAIAdapter().embeddings_response(_DEP, b'{"object": "list"}')


# -- streams -----------------------------------------------------------------------------------------------------------
def event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


CHUNKS = [
    {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
    {"id": "c", "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
    {"id": "c", "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
]
STREAM = b": keep-alive comment\n\n" + b"".join(event(c) for c in CHUNKS) + b"data: [DONE]\n\n"


def test_stream_decoder_whole() -> None:
    decoder = OpenAIAdapter().stream_decoder(_DEP)
    chunks = decoder.feed(STREAM)
    assert [chunk_dict(c) for c in chunks] == CHUNKS
    assert all(raw == orjson.dumps(c) for c, (_, raw) in zip(CHUNKS, chunks, strict=True))  # original bytes kept
    assert decoder.done


@settings(max_examples=150, deadline=None, database=None)
@given(cuts=st.lists(st.integers(0, len(STREAM)), max_size=12), crlf=st.booleans())
def test_stream_decoder_any_split(cuts: list[int], crlf: bool) -> None:
    """However the bytes are split across reads (and with CRLF line ends), the same chunks come out."""
    stream = STREAM.replace(b"\n", b"\r\n") if crlf else STREAM
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    decoder = OpenAIAdapter().stream_decoder(_DEP)
    out: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(points):
        out += [chunk_dict(c) for c in decoder.feed(stream[a:b])]
    assert out == CHUNKS
    assert decoder.done


@pytest.mark.parametrize("read", [
    b"".join(event(c) for c in CHUNKS),  # whole events of one data line each: read without the SSE parser
    event(CHUNKS[1]) + b"data: \n\n" + event(CHUNKS[2]),  # an empty event
    event(CHUNKS[1]) + b"event: delta\n" + event(CHUNKS[2]),  # another field
    event(CHUNKS[1]) + b'data: {"id": "c",\ndata: "choices": []}\n\n',  # two data lines
    event(CHUNKS[1]) + b"data:" + orjson.dumps(CHUNKS[2]) + b"\n\n",  # no space after the colon
    event(CHUNKS[1]) + b"data: [DONE]\n\n" + event(CHUNKS[2]),  # the end, then nothing more counts
    event(CHUNKS[1]) + b"\n\n" + event(CHUNKS[2]),  # a blank line too many
])
def test_stream_decoder_fast_read_matches_the_parser(read: bytes) -> None:
    fast = OpenAIAdapter().stream_decoder(_DEP)
    parsed = OpenAIAdapter().stream_decoder(_DEP)
    chunks = fast.feed(read)
    expected = parsed._parsed(read)
    assert [(chunk_dict(c), c[1]) for c in chunks] == [(chunk_dict(c), c[1]) for c in expected]
    assert fast.done == parsed.done


def test_stream_decoder_error_event_is_classified() -> None:
    decoder = OpenAIAdapter().stream_decoder(_DEP)
    assert len(decoder.feed(event(CHUNKS[0]))) == 1
    with pytest.raises(UpstreamError) as info:
        decoder.feed(event({"error": {"message": "model overloaded", "type": "server_error"}}))
    assert info.value.outcome is Outcome.RETRY_HERE
    assert info.value.message == "model overloaded"


@pytest.mark.parametrize("payload", [b"data: {broken\n\n", b"data: [1, 2]\n\n"])
def test_stream_decoder_malformed_event(payload: bytes) -> None:
    with pytest.raises(UpstreamError) as info:
        OpenAIAdapter().stream_decoder(_DEP).feed(payload)
    assert info.value.outcome is Outcome.RETRY_HERE


def test_sse_parser_fields() -> None:
    parser = SSEParser()
    events = parser.feed(b"event: ping\ndata: a\ndata: b\nid: 3\nretry: 10\n\n: comment\n\ndata:x\n\ndata: tail")
    assert events == [("ping", b"a\nb"), ("", b"x")]
    assert parser.pending == b"data: tail"


# -- error classification (the table in providers/openai/errors.py) ---------------------------------------------------
def body(message: str = "boom", code: str | None = None, type_: str | None = None, **extra: Any) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code, **extra}})


@pytest.mark.parametrize(("status", "headers", "payload", "outcome"), [
    (400, {}, body("Invalid 'temperature'"), Outcome.CLIENT_ERROR),
    (422, {}, body("unprocessable"), Outcome.CLIENT_ERROR),
    (400, {}, body("too long", code="context_length_exceeded"), Outcome.CONTEXT_TOO_LONG),
    (400, {}, body("This model's maximum context length is 8192 tokens."), Outcome.CONTEXT_TOO_LONG),
    (400, {}, body("rejected", code="content_policy_violation"), Outcome.CONTENT_POLICY),
    (400, {}, body("filtered", code=None, innererror={"code": "ResponsibleAIPolicyViolation"}), Outcome.CONTENT_POLICY),
    (400, {}, body("The response was filtered", code="content_filter"), Outcome.CONTENT_POLICY),
    (401, {}, body("Incorrect API key provided"), Outcome.MOVE_ON),
    (403, {}, body("forbidden"), Outcome.MOVE_ON),
    (404, {}, body("The model `x` does not exist"), Outcome.MOVE_ON),
    (408, {}, body("timeout"), Outcome.RETRY_HERE),
    (409, {}, body("conflict"), Outcome.RETRY_HERE),
    (429, {"retry-after": "1"}, body("Rate limit reached", code="rate_limit_exceeded"), Outcome.RETRY_HERE),
    (429, {}, body("quota", code="insufficient_quota"), Outcome.MOVE_ON),
    (429, {"retry-after": "30"}, body("slow down"), Outcome.MOVE_ON),
    (429, {"retry-after-ms": "500"}, body("slow down"), Outcome.RETRY_HERE),
    (500, {}, body("server error"), Outcome.RETRY_HERE),
    (502, {}, b"<html>Bad Gateway</html>", Outcome.RETRY_HERE),
    (503, {}, b"", Outcome.RETRY_HERE),
    (529, {}, body("overloaded"), Outcome.RETRY_HERE),
    (418, {}, body("teapot"), Outcome.MOVE_ON),
])
def test_classification_table(status: int, headers: dict[str, str], payload: bytes, outcome: Outcome) -> None:
    err = classify_error(status, headers, payload)
    assert err.outcome is outcome
    assert err.upstream_status == status
    if outcome is Outcome.CLIENT_ERROR:
        assert err.status == status  # passed back to the client with the upstream's status
        assert err.error_type == "invalid_request_error"


def test_classified_message() -> None:
    assert classify_error(500, {}, b"<html> Internal\n\n Error </html>").message == "<html> Internal Error </html>"
    assert classify_error(503, {}, b"").message == "upstream answered HTTP 503"
    err = classify_error(429, {"retry-after": "2"}, body("wait", code="rate_limit_exceeded", type_="requests"))
    assert (err.message, err.code, err.error_type, err.retry_after) == ("wait", "rate_limit_exceeded", "requests", 2.0)


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
    ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
    ({"x-ratelimit-reset-tokens": "250ms"}, 0.25),
    ({"x-ratelimit-reset-requests": "1h2m3.5s"}, 3723.5),
    ({"x-ratelimit-reset-requests": "soon"}, None),
    ({}, None),
])
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers) == seconds


def test_redact() -> None:
    assert redact(f"key {KEY} leaked", ()) == "key [redacted] leaked"
    assert redact("token plain-secret-value here", ["plain-secret-value"]) == "token [redacted] here"
    assert redact("AIzaSyA-0123456789abcdefghijkl", ()) == "[redacted]"
    assert redact("nothing to see", ["abc"]) == "nothing to see"
    assert summarize_body(b"x" * 1000, limit=10) == "x" * 9 + "\u2026"
