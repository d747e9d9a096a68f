"""The ``gemini`` adapter as pure translation: golden wire fixtures, properties, error classes."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
import quicktok
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_support import PNG, PNG_URI, canonical_meaning, chat_requests, clock, cut_points, feed_in_pieces, load_json
from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers import get_adapter
from stellwerk.providers.gemini import GeminiAdapter, GeminiStreamDecoder
from stellwerk.providers.gemini.request import join_signature, split_signature
from stellwerk.providers.gemini.schema import to_gemini_schema

FIXTURES = Path(__file__).parent / "fixtures"
KEY = "AIzaSyD-gemini-test-key-0123456789abcdef"
ADAPTER = GeminiAdapter(clock=clock)


def deployment(**fields: Any) -> DeploymentConfig:
    values: dict[str, Any] = {"id": "g", "provider": "gemini", "model": "gemini-2.0-flash", "api_key": KEY}
    values.update(fields)
    return DeploymentConfig(**values)


DEP = deployment()
ENDPOINT = ADAPTER.endpoint(DEP)


def wire(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(ADAPTER.chat_request(DEP, ENDPOINT, body, stream).body)
    return result


# -- endpoint ---------------------------------------------------------------------------------------------------------
def test_registered() -> None:
    assert get_adapter("gemini").name == "gemini"


def test_endpoint_urls_headers_and_secrets() -> None:
    endpoint = ADAPTER.endpoint(deployment(headers={"X-Goog-User-Project": "proj-1"}))
    root = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"
    assert endpoint.chat_url == f"{root}:generateContent"
    assert endpoint.stream_url == f"{root}:streamGenerateContent?alt=sse"
    assert endpoint.embeddings_url == f"{root}:batchEmbedContents"
    assert endpoint.models_url == root
    headers = dict(endpoint.headers)
    assert headers["x-goog-api-key"] == KEY and headers["x-goog-user-project"] == "proj-1"
    assert "authorization" not in headers
    assert KEY in endpoint.secrets and "proj-1" in endpoint.secrets
    assert b"accept: text/event-stream" in endpoint.sse_headers and b"accept: application/json" in endpoint.json_headers


def test_endpoint_custom_base_and_tuned_model() -> None:
    endpoint = ADAPTER.endpoint(deployment(api_base="http://127.0.0.1:9/v1beta/", model="tunedModels/mine", api_key=None))
    assert endpoint.chat_url == "http://127.0.0.1:9/v1beta/tunedModels/mine:generateContent"
    assert "x-goog-api-key" not in dict(endpoint.headers)


def test_stream_and_complete_requests_use_their_urls() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    streamed = ADAPTER.chat_request(DEP, ENDPOINT, body, True)
    assert streamed.url.endswith(":streamGenerateContent?alt=sse") and streamed.headers == ENDPOINT.sse_headers
    complete = ADAPTER.chat_request(DEP, ENDPOINT, body, False)
    assert complete.url.endswith(":generateContent") and complete.headers == ENDPOINT.json_headers
    assert streamed.body == complete.body  # the stream flag is in the URL, not the body


# -- golden requests and answers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", load_json(FIXTURES / "requests.json"), ids=lambda c: c["name"])
def test_golden_requests(case: dict[str, Any]) -> None:
    assert wire(case["openai"]) == case["gemini"]


@pytest.mark.parametrize("case", load_json(FIXTURES / "responses.json"), ids=lambda c: c["name"])
def test_golden_responses(case: dict[str, Any]) -> None:
    data, raw = ADAPTER.chat_response(DEP, orjson.dumps(case["gemini"]))
    assert raw is None
    assert data == case["openai"]


def test_prompt_blocked_is_content_policy() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 12559, "totalTokenCount": 12559}, "modelVersion": "gemini-1.5-flash-002"}
    with pytest.raises(UpstreamError) as info:
        ADAPTER.chat_response(DEP, orjson.dumps(body))
    assert info.value.outcome is Outcome.CONTENT_POLICY
    assert "PROHIBITED_CONTENT" in info.value.message


def test_error_in_a_200_body_and_malformed_bodies() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.chat_response(DEP, b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}')
    assert info.value.outcome is Outcome.RETRY_HERE
    for body in (b"not json", b"[1, 2]"):
        with pytest.raises(UpstreamError) as info:
            ADAPTER.chat_response(DEP, body)
        assert info.value.outcome is Outcome.RETRY_HERE


# -- streams ----------------------------------------------------------------------------------------------------------
STREAMS = ["stream_text", "stream_tools"]


@pytest.mark.parametrize("name", STREAMS)
def test_golden_streams(name: str) -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    chunks = decoder.feed((FIXTURES / f"{name}.sse").read_bytes())
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")
    assert decoder.done
    assert chunks[-1][0]["choices"] == [] and chunks[-1][0]["usage"]["total_tokens"] > 0


@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_streams_split_anywhere_give_the_same_chunks(name: str, data: st.DataObject) -> None:
    raw = (FIXTURES / f"{name}.sse").read_bytes()
    cuts = data.draw(cut_points(len(raw)))
    chunks = feed_in_pieces(GeminiStreamDecoder("gemini-up", clock), raw, cuts)
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")


def test_stream_prompt_blocked_raises_before_any_chunk() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.stream_decoder(DEP).feed((FIXTURES / "stream_blocked.sse").read_bytes())
    assert info.value.outcome is Outcome.CONTENT_POLICY


def test_stream_error_event_after_chunks() -> None:
    raw = (FIXTURES / "stream_error.sse").read_bytes()
    first, _, rest = raw.partition(b"\r\n\r\n")
    decoder = ADAPTER.stream_decoder(DEP)
    assert decoder.feed(first + b"\r\n\r\n")[0][0]["choices"][0]["delta"]["content"] == "Rayleigh"
    with pytest.raises(UpstreamError) as info:
        decoder.feed(rest)
    assert info.value.outcome is Outcome.RETRY_HERE and info.value.upstream_status == 503
    assert not decoder.done


def test_stream_malformed_event() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.stream_decoder(DEP).feed(b"data: {nope\r\n\r\n")
    assert info.value.outcome is Outcome.RETRY_HERE


# -- errors -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", load_json(FIXTURES / "errors.json"), ids=lambda c: c["name"])
def test_golden_errors(case: dict[str, Any]) -> None:
    body = case["body"].encode() if isinstance(case["body"], str) else orjson.dumps(case["body"])
    err = ADAPTER.classify(case["status"], case["headers"], body)
    assert err.outcome.value == case["outcome"]
    assert err.retry_after == case["retry_after"]
    assert err.code == case["code"]
    assert err.upstream_status == case["status"]
    assert err.message and KEY not in err.message
    if err.outcome is Outcome.CLIENT_ERROR:
        assert err.status == case["status"]


# -- what Gemini cannot take -----------------------------------------------------------------------------------------
def test_remote_image_urls_move_on() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}
    with pytest.raises(UpstreamError) as info:
        wire(body)
    assert info.value.outcome is Outcome.MOVE_ON


def test_invalid_base64_image_is_a_client_error() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not-base64@@"}}]}]}
    with pytest.raises(UpstreamError) as info:
        wire(body)
    assert info.value.outcome is Outcome.CLIENT_ERROR and info.value.status == 400


def test_invalid_tool_arguments_are_a_client_error() -> None:
    body = {"model": "chat", "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}]}]}
    with pytest.raises(UpstreamError) as info:
        wire(body)
    assert info.value.outcome is Outcome.CLIENT_ERROR


# -- embeddings -------------------------------------------------------------------------------------------------------
def test_embeddings_one_input_uses_embed_content() -> None:
    request = ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": "hello", "dimensions": 8})
    assert request.url.endswith("/models/gemini-2.0-flash:embedContent")
    assert orjson.loads(request.body) == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 8}
    data, _ = ADAPTER.embeddings_response(DEP, orjson.dumps({"embedding": {"values": [0.5, -0.25]}}))
    assert data["data"] == [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}]
    assert data["object"] == "list" and data["usage"] == {"prompt_tokens": 0, "total_tokens": 0}


def test_embeddings_several_inputs_use_batch() -> None:
    request = ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": ["a", "b"]})
    assert request.url.endswith(":batchEmbedContents")
    assert orjson.loads(request.body) == {"requests": [
        {"model": "models/gemini-2.0-flash", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-2.0-flash", "content": {"parts": [{"text": "b"}]}}]}
    answer = {"embeddings": [{"values": [1.0]}, {"values": [2.0]}], "usageMetadata": {"promptTokenCount": 4}}
    data, _ = ADAPTER.embeddings_response(DEP, orjson.dumps(answer))
    assert [d["embedding"] for d in data["data"]] == [[1.0], [2.0]] and data["usage"]["prompt_tokens"] == 4


def test_embeddings_token_ids_are_decoded_bad_ones_move_on_and_bad_answers_retry() -> None:
    # Token-id arrays (what OpenAI's SDKs and LangChain send) are decoded with cl100k, as OpenAI would read them.
    hello = quicktok.get_encoding("cl100k_base").encode("hello world")
    for data in (hello, [hello, hello]):
        wire = orjson.loads(ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": data}).body)
        assert {r["content"]["parts"][0]["text"] for r in wire["requests"]} == {"hello world"}
    for bad in ([1, "a"], [[1], []], [-1], [10**9]):
        with pytest.raises(UpstreamError) as info:
            ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": bad})
        assert info.value.outcome is Outcome.MOVE_ON and info.value.param == "input"
    with pytest.raises(UpstreamError) as info:
        ADAPTER.embeddings_response(DEP, b'{"embeddings": [{"nothing": 1}]}')
    assert info.value.outcome is Outcome.RETRY_HERE


# -- properties -------------------------------------------------------------------------------------------------------
def gemini_meaning(body: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The test-side inverse: what each side said in a Gemini request."""
    system = [p["text"] for p in body.get("systemInstruction", {}).get("parts", [])]
    items: list[tuple[Any, ...]] = []
    for content in body["contents"]:
        side = {"user": "user", "model": "assistant"}[content["role"]]
        assert content["parts"], "Gemini rejects a content without parts"
        for part in content["parts"]:
            if "text" in part:
                items.append((side, "text", part["text"]))
            elif "inlineData" in part:
                items.append((side, "image", part["inlineData"]["mimeType"], part["inlineData"]["data"]))
            elif "functionCall" in part:
                items.append((side, "call", part["functionCall"]["name"], part["functionCall"]["args"]))
            else:
                response = part["functionResponse"]["response"]
                items.append((side, "result", part["functionResponse"]["name"], response["output"]))
    return system, items


@settings(max_examples=150, deadline=None)
@given(chat_requests())
def test_translation_keeps_the_meaning(body: dict[str, Any]) -> None:
    translated = wire(body)
    system, items = canonical_meaning(body)
    wire_system, wire_items = gemini_meaning(translated)
    assert wire_system == (["\n\n".join(system)] if system else [])
    assert wire_items == items
    roles = [c["role"] for c in translated["contents"]]
    assert all(a != b for a, b in pairwise(roles)), "consecutive contents share a role"
    config = translated.get("generationConfig", {})
    assert config.get("temperature") == body.get("temperature")
    assert config.get("topP") == body.get("top_p")
    assert config.get("maxOutputTokens") == body.get("max_tokens")
    assert config.get("seed") == body.get("seed")
    stop = body.get("stop")
    assert config.get("stopSequences") == ([stop] if isinstance(stop, str) else stop)
    names = [d["name"] for t in translated.get("tools", []) for d in t["functionDeclarations"]]
    assert names == [t["function"]["name"] for t in body.get("tools", [])]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.builds(lambda t: {"text": t}, st.text(max_size=5)),
                          st.builds(lambda n, a: {"functionCall": {"name": n, "args": a}},
                                    st.sampled_from(["f", "g"]), st.dictionaries(st.text(max_size=3), st.integers(-99, 99)))),
                max_size=6),
       st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "BLOCKLIST"]),
       st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 500))
def test_answers_keep_text_calls_finish_and_usage(parts: list[dict[str, Any]], reason: str, prompt: int,
                                                  output: int, thoughts: int) -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": reason}],
              "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": output,
                                "thoughtsTokenCount": thoughts}, "responseId": "r"}
    data, _ = ADAPTER.chat_response(DEP, orjson.dumps(answer))
    message = data["choices"][0]["message"]
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    text = "".join(p["text"] for p in parts if "text" in p)
    assert (message["content"] or "") == text
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls", [])] == [
        (c["name"], c["args"]) for c in calls]
    assert len({c["id"] for c in message.get("tool_calls", [])}) == len(calls)
    expected = {"MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
                "BLOCKLIST": "content_filter"}.get(reason, "tool_calls" if calls else "stop")
    assert data["choices"][0]["finish_reason"] == expected
    assert data["usage"]["prompt_tokens"] == prompt
    assert data["usage"]["completion_tokens"] == output + thoughts
    again, _ = ADAPTER.chat_response(DEP, orjson.dumps(answer))
    assert again == data  # stable ids


@given(st.text(max_size=20), st.binary(max_size=64))
def test_thought_signatures_round_trip_in_portable_ids(base: str, signature: bytes) -> None:
    base = base.replace("__ts__", "")
    import base64

    encoded = base64.b64encode(signature).decode()
    joined = join_signature(base, encoded)
    assert split_signature(joined) == (base, encoded if signature else None)
    if signature:
        assert set(joined[len(base):]) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_schema_conversion_keeps_what_gemini_understands() -> None:
    schema = {"type": "object", "properties": {
        "kind": {"const": "a"},
        "n": {"type": ["integer", "string"]},
        "deep": {"$ref": "#/definitions/node"}},
        "definitions": {"node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/node"}}}}}
    converted = to_gemini_schema(schema)
    assert converted["properties"]["kind"] == {"enum": ["a"], "type": "STRING"}
    assert converted["properties"]["n"] == {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}
    depth, node = 0, converted["properties"]["deep"]
    while "properties" in node:  # a recursive $ref is cut off, not followed forever
        node, depth = node["properties"]["next"], depth + 1
    assert 0 < depth < 20
    assert PNG in PNG_URI


def test_reasoning_effort_becomes_a_thinking_budget() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low"}
    assert wire(body)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 1024}
    assert wire({**body, "reasoning_effort": "none"})["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}
    with pytest.raises(UpstreamError) as refused:
        wire({**body, "reasoning_effort": "turbo"})
    assert refused.value.outcome is Outcome.MOVE_ON and refused.value.param == "reasoning_effort"
