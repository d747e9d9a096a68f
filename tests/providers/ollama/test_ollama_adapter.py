"""The ``ollama`` adapter as pure translation: golden wire fixtures, properties, error classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_support import canonical_meaning, chat_requests, clock, cut_points, feed_in_pieces, load_json
from stellwerk.config import DeploymentConfig
from stellwerk.errors import Outcome, UpstreamError
from stellwerk.providers import get_adapter
from stellwerk.providers.ollama import OllamaAdapter, OllamaStreamDecoder

FIXTURES = Path(__file__).parent / "fixtures"
ADAPTER = OllamaAdapter(clock=clock)
DEP = DeploymentConfig(id="o", provider="ollama", model="llama3.2")
ENDPOINT = ADAPTER.endpoint(DEP)


def wire(body: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(ADAPTER.chat_request(DEP, ENDPOINT, body, stream).body)
    return result


# -- endpoint ---------------------------------------------------------------------------------------------------------
def test_registered() -> None:
    assert get_adapter("ollama").name == "ollama"


def test_endpoint_defaults() -> None:
    assert ENDPOINT.chat_url == "http://localhost:11434/api/chat"
    assert ENDPOINT.embeddings_url == "http://localhost:11434/api/embed"
    assert ENDPOINT.models_url == "http://localhost:11434/api/tags"
    assert "authorization" not in dict(ENDPOINT.headers)
    assert ENDPOINT.secrets == ()
    assert b"accept: application/x-ndjson" in ENDPOINT.sse_headers


def test_endpoint_with_key_behind_a_proxy() -> None:
    dep = DeploymentConfig(id="o", provider="ollama", model="m", api_base="https://ollama.example/", api_key="olk-secret-1")
    endpoint = ADAPTER.endpoint(dep)
    assert endpoint.chat_url == "https://ollama.example/api/chat"
    assert dict(endpoint.headers)["authorization"] == "Bearer olk-secret-1"
    assert "olk-secret-1" in endpoint.secrets


def test_stream_flag_and_headers() -> None:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    assert ADAPTER.chat_request(DEP, ENDPOINT, body, True).headers == ENDPOINT.sse_headers
    assert ADAPTER.chat_request(DEP, ENDPOINT, body, False).headers == ENDPOINT.json_headers


# -- golden -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", load_json(FIXTURES / "requests.json"), ids=lambda c: c["name"])
def test_golden_requests(case: dict[str, Any]) -> None:
    assert wire(case["openai"], case["stream"]) == case["ollama"]


@pytest.mark.parametrize("case", load_json(FIXTURES / "responses.json"), ids=lambda c: c["name"])
def test_golden_responses(case: dict[str, Any]) -> None:
    data, raw = ADAPTER.chat_response(DEP, orjson.dumps(case["ollama"]))
    assert raw is None and data == case["openai"]


STREAMS = ["stream_text", "stream_tools"]


@pytest.mark.parametrize("name", STREAMS)
def test_golden_streams(name: str) -> None:
    decoder = ADAPTER.stream_decoder(DEP)
    chunks = decoder.feed((FIXTURES / f"{name}.ndjson").read_bytes())
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")
    assert decoder.done


@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_streams_split_anywhere_give_the_same_chunks(name: str, data: st.DataObject) -> None:
    raw = (FIXTURES / f"{name}.ndjson").read_bytes()
    chunks = feed_in_pieces(OllamaStreamDecoder("llama-up", clock), raw, data.draw(cut_points(len(raw))))
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")


def test_stream_error_line_after_chunks() -> None:
    first, rest = (FIXTURES / "stream_error.ndjson").read_bytes().split(b"\n", 1)
    decoder = ADAPTER.stream_decoder(DEP)
    assert decoder.feed(first + b"\n")[0][0]["choices"][0]["delta"]["content"] == "The"
    with pytest.raises(UpstreamError) as info:
        decoder.feed(rest)
    assert info.value.outcome is Outcome.RETRY_HERE and "unexpected EOF" in info.value.message


def test_stream_malformed_line_and_error_answer() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.stream_decoder(DEP).feed(b"{oops\n")
    assert info.value.outcome is Outcome.RETRY_HERE
    with pytest.raises(UpstreamError) as info:
        ADAPTER.chat_response(DEP, b'{"error": "model \\"x\\" not found, try pulling it first"}')
    assert info.value.outcome is Outcome.MOVE_ON


@pytest.mark.parametrize("case", load_json(FIXTURES / "errors.json"), ids=lambda c: c["name"])
def test_golden_errors(case: dict[str, Any]) -> None:
    body = case["body"].encode() if isinstance(case["body"], str) else orjson.dumps(case["body"])
    err = ADAPTER.classify(case["status"], case["headers"], body)
    assert err.outcome.value == case["outcome"]
    assert err.retry_after == case["retry_after"]
    assert err.upstream_status == case["status"] and err.message


# -- what Ollama cannot take -----------------------------------------------------------------------------------------
def test_n_and_remote_images_move_on() -> None:
    for body in ({"model": "c", "messages": [{"role": "user", "content": "x"}], "n": 2},
                 {"model": "c", "messages": [{"role": "user", "content": [
                     {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]}):
        with pytest.raises(UpstreamError) as info:
            wire(body)
        assert info.value.outcome is Outcome.MOVE_ON


# -- embeddings -------------------------------------------------------------------------------------------------------
def test_embeddings() -> None:
    request = ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": ["Why is the sky blue?", "Why green?"],
                                                        "dimensions": 2, "encoding_format": "float"})
    assert request.url == "http://localhost:11434/api/embed"
    assert orjson.loads(request.body) == {"model": "llama3.2", "input": ["Why is the sky blue?", "Why green?"],
                                          "dimensions": 2}
    answer = {"model": "all-minilm", "embeddings": [[0.01, -0.02], [0.03, 0.04]], "total_duration": 14143917,
              "load_duration": 1019500, "prompt_eval_count": 8}
    data, _ = ADAPTER.embeddings_response(DEP, orjson.dumps(answer))
    assert [d["embedding"] for d in data["data"]] == [[0.01, -0.02], [0.03, 0.04]]
    assert data["usage"] == {"prompt_tokens": 8, "total_tokens": 8} and data["model"] == "all-minilm"
    decoded = orjson.loads(ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": [[15339, 1917]]}).body)
    assert decoded["input"] == ["hello world"]  # token ids (cl100k) are decoded: Ollama takes text
    with pytest.raises(UpstreamError) as info:
        ADAPTER.embeddings_request(DEP, ENDPOINT, {"model": "e", "input": [[-1]]})
    assert info.value.outcome is Outcome.MOVE_ON and info.value.param == "input"
    with pytest.raises(UpstreamError) as info:
        ADAPTER.embeddings_response(DEP, b'{"embeddings": []}')
    assert info.value.outcome is Outcome.RETRY_HERE


# -- properties -------------------------------------------------------------------------------------------------------
def ollama_meaning(body: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The test-side inverse: what each side said in an Ollama request."""
    system: list[str] = []
    items: list[tuple[Any, ...]] = []
    for m in body["messages"]:
        if m["role"] == "system":
            system.append(m["content"])
        elif m["role"] == "tool":
            items.append(("user", "result", m["tool_name"], m["content"]))
        else:
            if m["content"]:
                items.append((m["role"], "text", m["content"]))
            items.extend((m["role"], "image", "image/png", image) for image in m.get("images", []))
            items.extend((m["role"], "call", c["function"]["name"], c["function"]["arguments"])
                         for c in m.get("tool_calls", []))
    return system, items


@settings(max_examples=150, deadline=None)
@given(chat_requests(), st.booleans())
def test_translation_keeps_the_meaning(body: dict[str, Any], stream: bool) -> None:
    translated = wire(body, stream)
    assert ollama_meaning(translated) == canonical_meaning(body, join_texts=True)
    assert translated["stream"] is stream and translated["model"] == "llama3.2"
    options = translated.get("options", {})
    for name in ("temperature", "top_p", "seed"):
        assert options.get(name) == body.get(name)
    assert options.get("num_predict") == body.get("max_tokens")
    stop = body.get("stop")
    assert options.get("stop") == ([stop] if isinstance(stop, str) else stop)
    assert translated.get("tools") == body.get("tools")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=8), st.lists(st.sampled_from(["f", "g"]), max_size=3),
       st.sampled_from(["stop", "length"]), st.integers(0, 9999), st.integers(0, 9999))
def test_streamed_and_complete_answers_agree(pieces: list[str], calls: list[str], reason: str, prompt: int,
                                             output: int) -> None:
    """The same answer, streamed line by line or sent whole, gives the same text, calls, finish and usage."""
    lines = [{"model": "m", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": p},
              "done": False} for p in pieces]
    lines += [{"model": "m", "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": "",
               "tool_calls": [{"function": {"name": c, "arguments": {"i": i}}}]}, "done": False}
              for i, c in enumerate(calls)]
    final = {"model": "m", "created_at": "2025-01-01T00:00:00Z", "done": True, "done_reason": reason,
             "prompt_eval_count": prompt, "eval_count": output}
    chunks = [c for c, _ in ADAPTER.stream_decoder(DEP).feed(b"".join(orjson.dumps(x) + b"\n" for x in [*lines, final]))]
    complete, _ = ADAPTER.chat_response(DEP, orjson.dumps({
        **final, "message": {"role": "assistant", "content": "".join(pieces),
                             "tool_calls": [{"function": {"name": c, "arguments": {"i": i}}} for i, c in enumerate(calls)]}}))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == (complete["choices"][0]["message"]["content"] or "")
    streamed_calls = [(t["function"]["name"], json.loads(t["function"]["arguments"])) for d in deltas
                      for t in d.get("tool_calls", [])]
    complete_calls = [(t["function"]["name"], json.loads(t["function"]["arguments"]))
                      for t in complete["choices"][0]["message"].get("tool_calls", [])]
    assert streamed_calls == complete_calls
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == complete["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == complete["usage"]


@pytest.mark.parametrize(("effort", "think"), [("none", False), ("low", True), ("high", True)])
def test_reasoning_effort_becomes_think(effort: str, think: bool) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": effort}
    assert wire(body, False)["think"] is think
    assert "think" not in wire({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, False)
