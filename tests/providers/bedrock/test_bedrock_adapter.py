"""The ``bedrock`` adapter: Converse translation, the event-stream decoder, SigV4 signing, error classes."""

from __future__ import annotations

import datetime
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_support import (
    canonical_meaning,
    chat_requests,
    clock,
    cut_points,
    encode_event,
    encode_events,
    feed_in_pieces,
    load_json,
)
from stellwerk import load_dict
from stellwerk.config import DeploymentConfig
from stellwerk.errors import ConfigError, Outcome, UpstreamError
from stellwerk.providers import get_adapter
from stellwerk.providers.bedrock import BedrockAdapter, BedrockStreamDecoder, EventStreamDecoder
from stellwerk.providers.bedrock.checks import deployment_problems

FIXTURES = Path(__file__).parent / "fixtures"
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
AKID, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example-0123456789"
ADAPTER = BedrockAdapter(clock=clock)


def deployment(**fields: Any) -> DeploymentConfig:
    values: dict[str, Any] = {"id": "b", "provider": "bedrock", "model": MODEL, "region": "us-east-1",
                              "aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
    values.update(fields)
    return DeploymentConfig(**values)


KEYED = deployment(api_key="bedrock-api-key-0123456789", aws_access_key_id=None, aws_secret_access_key=None)
KEYED_ENDPOINT = ADAPTER.endpoint(KEYED)


def wire(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(ADAPTER.chat_request(KEYED, KEYED_ENDPOINT, body, False).body)
    return result


# -- endpoint and auth ------------------------------------------------------------------------------------------------
def test_registered_lazily() -> None:
    assert get_adapter("bedrock").name == "bedrock"


def test_endpoint_urls_encode_the_model_id() -> None:
    root = "https://bedrock-runtime.eu-west-3.amazonaws.com/model/anthropic.claude-3-5-haiku-20241022-v1%3A0"
    endpoint = BedrockAdapter(clock=clock).endpoint(deployment(region="eu-west-3"))
    assert endpoint.chat_url == f"{root}/converse"
    assert endpoint.stream_url == f"{root}/converse-stream"
    assert endpoint.models_url == ("https://bedrock.eu-west-3.amazonaws.com/foundation-models/"
                                   "anthropic.claude-3-5-haiku-20241022-v1%3A0")
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    endpoint = BedrockAdapter(clock=clock).endpoint(deployment(model=arn, api_base="http://127.0.0.1:9"))
    assert endpoint.chat_url == ("http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A"
                                 "inference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse")


def test_api_key_is_a_bearer_token_and_needs_no_signing() -> None:
    headers = dict(KEYED_ENDPOINT.headers)
    assert headers["authorization"] == "Bearer bedrock-api-key-0123456789"
    assert "bedrock-api-key-0123456789" in KEYED_ENDPOINT.secrets
    body = {"model": "c", "messages": [{"role": "user", "content": "hi"}]}
    streamed = ADAPTER.chat_request(KEYED, KEYED_ENDPOINT, body, True)
    assert streamed.url.endswith("/converse-stream") and streamed.headers == KEYED_ENDPOINT.sse_headers
    assert b"accept: application/vnd.amazon.eventstream" in KEYED_ENDPOINT.sse_headers


def test_sigv4_headers_at_the_injected_time() -> None:
    dep = deployment(aws_session_token=TOKEN)
    adapter = BedrockAdapter(clock=clock)
    endpoint = adapter.endpoint(dep)
    assert {SECRET, TOKEN} <= set(endpoint.secrets)
    request = adapter.chat_request(dep, endpoint, {"model": "c", "messages": [{"role": "user", "content": "hi"}]}, False)
    assert isinstance(request.headers, list)
    headers = dict(request.headers)
    assert headers["x-amz-date"] == "20231114T221320Z"  # 1_700_000_000
    assert headers["x-amz-security-token"] == TOKEN
    assert headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={AKID}/20231114/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, Signature=")
    assert SECRET not in str(request.headers)
    again = adapter.chat_request(dep, endpoint, {"model": "c", "messages": [{"role": "user", "content": "hi"}]}, False)
    assert again.headers == request.headers  # deterministic at one instant
    later = BedrockAdapter(clock=lambda: 1_700_000_060.0)
    moved = dict(later.chat_request(dep, later.endpoint(dep), {"model": "c", "messages": [{"role": "user", "content": "hi"}]},
                                    False).headers)
    assert moved["authorization"] != headers["authorization"]


def test_sigv4_signature_matches_botocores_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Signing at an injected time gives exactly what botocore's ``add_auth`` gives at that wall-clock time."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from stellwerk.providers.bedrock.signing import SigV4Signer

    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-v2%3A1/converse"
    headers = [("content-type", "application/json"), ("accept", "application/json"), ("x-extra", "1")]
    body = b'{"messages": []}'
    ours = dict(SigV4Signer(Credentials(AKID, SECRET, TOKEN), "us-east-1", clock).sign("POST", url, headers, body))
    fixed = datetime.datetime(2023, 11, 14, 22, 13, 20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: fixed)
    request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
    botocore.auth.SigV4Auth(Credentials(AKID, SECRET, TOKEN), "bedrock", "us-east-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


def test_default_credential_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask the network
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env-0123456789")
    dep = deployment(aws_access_key_id=None, aws_secret_access_key=None)
    adapter = BedrockAdapter(clock=clock)
    endpoint = adapter.endpoint(dep)
    assert "secret-from-env-0123456789" in endpoint.secrets
    request = adapter.chat_request(dep, endpoint, {"model": "c", "messages": [{"role": "user", "content": "x"}]}, True)
    assert "Credential=AKIDFROMENV/" in dict(request.headers)["authorization"]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError) as info:
        BedrockAdapter(clock=clock).endpoint(dep)
    assert "no AWS credentials" in str(info.value)


def test_missing_botocore_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore", None)
    monkeypatch.setitem(sys.modules, "stellwerk.providers.bedrock.signing", None)
    with pytest.raises(ConfigError) as info:
        BedrockAdapter(clock=clock).endpoint(deployment())
    assert "stellwerk[bedrock]" in str(info.value)
    assert BedrockAdapter(clock=clock).endpoint(KEYED).chat_url  # API keys need no botocore
    monkeypatch.setattr("stellwerk.providers.bedrock.checks.botocore_installed", lambda: False)
    assert any("stellwerk[bedrock]" in p for p in deployment_problems(deployment()))
    assert not any("botocore" in p for p in deployment_problems(KEYED))


# -- config rules -------------------------------------------------------------------------------------------------------
def _config(**dep: Any) -> dict[str, Any]:
    return {"models": [{"name": "m", "deployments": [{"id": "b", "provider": "bedrock", "model": MODEL, **dep}]}]}


@pytest.mark.parametrize(("fields", "problem"), [
    ({}, "deployments[0].region: required for provider 'bedrock'"),
    ({"region": "us-east-1", "aws_access_key_id": AKID}, "aws_access_key_id and aws_secret_access_key go together"),
    ({"region": "us-east-1", "aws_session_token": TOKEN}, "aws_session_token: needs aws_access_key_id"),
    ({"region": "us-east-1", "api_key": "k", "aws_access_key_id": AKID, "aws_secret_access_key": SECRET},
     "api_key: a Bedrock API key and AWS access keys exclude each other"),
])
def test_config_problems(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_dict(_config(**fields), env={})
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert SECRET not in str(info.value)


def test_config_aws_fields_belong_to_bedrock_and_probes_need_chat() -> None:
    data = {"models": [{"name": "m", "deployments": [
        {"id": "o", "provider": "openai", "model": "x", "region": "us-east-1"}]}]}
    with pytest.raises(ConfigError) as info:
        load_dict(data, env={})
    assert "models[0].deployments[0].region: only used by provider 'bedrock'" in info.value.problems
    probed = _config(region="us-east-1")
    probed["models"][0]["health_check"] = {"kind": "models"}
    with pytest.raises(ConfigError) as info:
        load_dict(probed, env={})
    assert any("health_check.kind 'chat'" in p for p in info.value.problems)
    probed["models"][0]["health_check"] = {"kind": "chat"}
    assert load_dict(probed, env={}).models[0].deployments[0].region == "us-east-1"


# -- golden -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", load_json(FIXTURES / "requests.json"), ids=lambda c: c["name"])
def test_golden_requests(case: dict[str, Any]) -> None:
    assert wire(case["openai"]) == case["bedrock"]


@pytest.mark.parametrize("case", load_json(FIXTURES / "responses.json"), ids=lambda c: c["name"])
def test_golden_responses(case: dict[str, Any]) -> None:
    data, raw = ADAPTER.chat_response(KEYED, orjson.dumps(case["bedrock"]))
    assert raw is None and data == case["openai"]


def test_malformed_answer() -> None:
    for body in (b"{}", b"nope", b'{"output": {}}'):
        with pytest.raises(UpstreamError) as info:
            ADAPTER.chat_response(KEYED, body)
        assert info.value.outcome is Outcome.RETRY_HERE


STREAMS = ["stream_text", "stream_tools"]


@pytest.mark.parametrize("name", STREAMS)
def test_golden_streams(name: str) -> None:
    decoder = ADAPTER.stream_decoder(KEYED)
    chunks = decoder.feed(encode_events(load_json(FIXTURES / f"{name}.events.json")))
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")
    assert decoder.done


@pytest.mark.parametrize("name", STREAMS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_streams_split_anywhere_give_the_same_chunks(name: str, data: st.DataObject) -> None:
    raw = encode_events(load_json(FIXTURES / f"{name}.events.json"))
    chunks = feed_in_pieces(BedrockStreamDecoder(MODEL, clock), raw, data.draw(cut_points(len(raw))))
    assert [c for c, _ in chunks] == load_json(FIXTURES / f"{name}.chunks.json")


def test_stream_exception_after_chunks() -> None:
    events = load_json(FIXTURES / "stream_exception.events.json")
    decoder = ADAPTER.stream_decoder(KEYED)
    assert [c["choices"][0]["delta"].get("content") for c, _ in decoder.feed(encode_events(events[:2]))] == ["", "Partial"]
    with pytest.raises(UpstreamError) as info:
        decoder.feed(encode_events(events[2:]))
    assert info.value.outcome is Outcome.RETRY_HERE and info.value.upstream_status == 429
    assert info.value.code == "throttlingException" and "Too many tokens" in info.value.message


def test_stream_exception_classes() -> None:
    for name, payload, outcome in [
        ("validationException", b'{"message": "Input is too long for requested model."}', Outcome.CONTEXT_TOO_LONG),
        ("modelStreamErrorException", b'{"message": "stream error"}', Outcome.RETRY_HERE),
        ("serviceUnavailableException", b"", Outcome.RETRY_HERE),
    ]:
        with pytest.raises(UpstreamError) as info:
            ADAPTER.stream_decoder(KEYED).feed(encode_event({":message-type": "exception", ":exception-type": name}, payload))
        assert info.value.outcome is outcome
    with pytest.raises(UpstreamError) as info:
        ADAPTER.stream_decoder(KEYED).feed(encode_event(
            {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""))
    assert info.value.outcome is Outcome.RETRY_HERE and "boom" in info.value.message


@pytest.mark.parametrize("case", load_json(FIXTURES / "errors.json"), ids=lambda c: c["name"])
def test_golden_errors(case: dict[str, Any]) -> None:
    body = case["body"].encode() if isinstance(case["body"], str) else orjson.dumps(case["body"])
    err = ADAPTER.classify(case["status"], case["headers"], body)
    assert err.outcome.value == case["outcome"]
    assert err.retry_after == case["retry_after"]
    assert err.code == case["code"]
    assert err.message


# -- the event-stream decoder ---------------------------------------------------------------------------------------------
_header_specs = st.one_of(
    st.booleans().map(lambda b: (0 if b else 1, b)),
    st.integers(-128, 127).map(lambda v: (2, v)),
    st.integers(-(2**15), 2**15 - 1).map(lambda v: (3, v)),
    st.integers(-(2**31), 2**31 - 1).map(lambda v: (4, v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: (5, v)),
    st.binary(max_size=40).map(lambda v: (6, v)),
    st.text(max_size=40).map(lambda v: (7, v)),
    st.integers(0, 2**62).map(lambda v: (8, v)),
    st.binary(min_size=16, max_size=16).map(lambda v: (9, v)),
)
_messages = st.lists(st.tuples(st.dictionaries(st.text(min_size=1, max_size=12), _header_specs, max_size=5),
                               st.binary(max_size=200)), min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(_messages, st.data())
def test_event_stream_round_trip_in_any_pieces(messages: list[tuple[dict[str, Any], bytes]], data: st.DataObject) -> None:
    raw = b"".join(encode_event(headers, payload) for headers, payload in messages)
    cuts = data.draw(cut_points(len(raw)))
    points = sorted({0, len(raw), *cuts})
    decoder = EventStreamDecoder()
    decoded = [m for a, b in pairwise(points) for m in decoder.feed(raw[a:b])]
    assert [(m.headers, m.payload) for m in decoded] == [
        ({name: (kind == 0) if kind in (0, 1) else value for name, (kind, value) in headers.items()}, payload)
        for headers, payload in messages]
    assert decoder.pending == b""


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=60), st.data())
def test_event_stream_corruption_is_detected(payload: bytes, data: st.DataObject) -> None:
    raw = bytearray(encode_event({":event-type": "contentBlockDelta"}, payload))
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(UpstreamError) as info:
        EventStreamDecoder().feed(bytes(raw) + b"\x00" * 64)
    assert info.value.reason == "protocol" and info.value.outcome is Outcome.RETRY_HERE


def test_event_stream_rejects_impossible_lengths() -> None:
    import struct
    import zlib

    prelude = struct.pack(">II", 1 << 30, 0)
    with pytest.raises(UpstreamError):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))


# -- what Converse cannot take -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"model": "c", "messages": [{"role": "user", "content": "x"}], "n": 3},
    {"model": "c", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]},
    {"model": "c", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}]},
])
def test_unsupported_requests_move_on(body: dict[str, Any]) -> None:
    with pytest.raises(UpstreamError) as info:
        wire(body)
    assert info.value.outcome is Outcome.MOVE_ON


def test_embeddings_move_on() -> None:
    with pytest.raises(UpstreamError) as info:
        ADAPTER.embeddings_request(KEYED, KEYED_ENDPOINT, {"model": "e", "input": "x"})
    assert info.value.outcome is Outcome.MOVE_ON


# -- properties -----------------------------------------------------------------------------------------------------------
def bedrock_meaning(body: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The test-side inverse: what each side said in a Converse request."""
    names = {b["toolUse"]["toolUseId"]: b["toolUse"]["name"] for m in body["messages"] for b in m["content"]
             if "toolUse" in b}
    items: list[tuple[Any, ...]] = []
    for m in body["messages"]:
        for block in m["content"]:
            if "text" in block:
                items.append((m["role"], "text", block["text"]))
            elif "image" in block:
                items.append((m["role"], "image", f"image/{block['image']['format']}", block["image"]["source"]["bytes"]))
            elif "toolUse" in block:
                items.append((m["role"], "call", block["toolUse"]["name"], block["toolUse"]["input"]))
            else:
                result = block["toolResult"]
                items.append((m["role"], "result", names[result["toolUseId"]], result["content"][0]["text"]))
    return [s["text"] for s in body.get("system", [])], items


@settings(max_examples=150, deadline=None)
@given(chat_requests())
def test_translation_keeps_the_meaning(body: dict[str, Any]) -> None:
    translated = wire(body)
    assert bedrock_meaning(translated) == canonical_meaning(body)
    roles = [m["role"] for m in translated["messages"]]
    assert roles[0] == "user" and all(a != b for a, b in pairwise(roles))
    assert all(block.get("text") != "" for m in translated["messages"] for block in m["content"])
    config = translated.get("inferenceConfig", {})
    assert config.get("temperature") == body.get("temperature")
    assert config.get("topP") == body.get("top_p")
    assert config.get("maxTokens") == body.get("max_tokens")
    stop = body.get("stop")
    assert config.get("stopSequences") == ([stop] if isinstance(stop, str) else stop)
    tools = [t["toolSpec"]["name"] for t in translated.get("toolConfig", {}).get("tools", [])]
    called = [c["function"]["name"] for m in body["messages"] for c in m.get("tool_calls") or ()]
    assert tools == [t["function"]["name"] for t in body.get("tools", [])] or tools == list(dict.fromkeys(called))
    assert bool(called) <= bool(tools), "Converse needs a toolConfig when the history holds tool calls"


def test_reasoning_effort_is_refused_not_dropped() -> None:
    """Converse has no model-independent reasoning setting: another deployment may take it, else a 400."""
    with pytest.raises(UpstreamError) as info:
        wire({"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "high"})
    assert info.value.outcome is Outcome.MOVE_ON and info.value.param == "reasoning_effort"
