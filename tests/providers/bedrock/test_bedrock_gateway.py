"""The official ``openai`` SDK through the gateway to a fake Bedrock that checks SigV4 and replays the fixtures."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from botocore.credentials import Credentials

from provider_support import ReplayUpstream, Reply, chunks_of, encode_events, json_response, load_json
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.providers.bedrock.signing import SigV4Signer

FIXTURES = Path(__file__).parent / "fixtures"
RESPONSES = {c["name"]: c["bedrock"] for c in load_json(FIXTURES / "responses.json")}
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
AKID, SECRET = "AKIDGATEWAYTEST", "gateway/secret+key/0123456789EXAMPLE"
TOP_SONG = {"type": "function", "function": {"name": "top_song", "parameters": {
    "type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}

StartReplay = Callable[[Reply], Awaitable[ReplayUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


def signature_problem(req: Request, port: int) -> str | None:
    """Verify the request's SigV4 signature the way AWS would: sign the same request again."""
    auth = req.headers.get("authorization", "")
    if not auth.startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/"):
        return "missing or foreign credential"
    signed = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    instant = datetime.strptime(req.headers["x-amz-date"], "%Y%m%dT%H%M%S%z").timestamp()
    headers = [(name, req.headers[name]) for name in signed if name not in ("host", "x-amz-date")]
    url = f"http://127.0.0.1:{port}{req.path}"
    expected = dict(SigV4Signer(Credentials(AKID, SECRET), "us-west-2", lambda: instant).sign("POST", url, headers, req.body))
    return None if expected["authorization"] == auth else "signature mismatch"


def fake_bedrock(port: Callable[[], int]) -> Reply:
    async def reply(req: Request) -> Response | StreamingResponse:
        problem = signature_problem(req, port())
        if problem is not None:
            return json_response({"message": f"The request signature we calculated does not match ({problem})."}, 403,
                                 [("x-amzn-ErrorType", "InvalidSignatureException:http://internal.amazon.com/coral/")])
        body = orjson.loads(req.body)
        tools = "toolConfig" in body and body["messages"][-1]["content"][0].get("toolResult") is None
        if req.path.endswith("/converse-stream"):
            name = "stream_tools" if tools else "stream_text"
            return StreamingResponse(chunks_of(encode_events(load_json(FIXTURES / f"{name}.events.json"))),
                                     content_type="application/vnd.amazon.eventstream")
        return json_response(RESPONSES["tool_use" if tools else "text"])

    return reply


async def gateway_for(start_replay: StartReplay, start_gateway: StartGateway,
                      secret: str = SECRET) -> tuple[ReplayUpstream, Gateway]:
    ports: list[int] = []
    upstream = await start_replay(fake_bedrock(lambda: ports[0]))
    ports.append(upstream.server.port)
    gateway = await start_gateway({"models": [{"name": "chat", "deployments": [
        {"id": "bedrock-a", "provider": "bedrock", "model": MODEL, "region": "us-west-2", "api_base": upstream.url(),
         "aws_access_key_id": AKID, "aws_secret_access_key": "${AWS_SECRET}"}]}]}, env={"AWS_SECRET": secret})
    return upstream, gateway


async def test_chat_signed(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    raw = await make_client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "system", "content": "Brief."}, {"role": "user", "content": "Why blue?"}],
        max_tokens=64)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Rayleigh scattering."
    assert completion.usage is not None and completion.usage.total_tokens == 16
    assert raw.headers["x-stellwerk-deployment"] == "bedrock-a"
    sent = upstream.last
    assert sent.path == "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    assert sent.json["system"] == [{"text": "Brief."}] and sent.json["inferenceConfig"] == {"maxTokens": 64}


async def test_stream_and_tools(start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    upstream, gateway = await gateway_for(start_replay, start_gateway)
    client = make_client(gateway)
    stream = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Why blue?"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Rayleigh scattering."
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12
    assert upstream.last.headers["accept"] == "application/vnd.amazon.eventstream"

    stream = await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Songs?"}],
                                                  tools=[TOP_SONG], stream=True)
    calls: dict[int, dict[str, str]] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                entry = calls.setdefault(call.index, {"id": "", "arguments": ""})
                entry["id"] += call.id or ""
                entry["arguments"] += (call.function.arguments or "") if call.function else ""
    assert [(c["id"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("tooluse_abc123", {"sign": "WZPZ"}), ("tooluse_def456", {"sign": "WKRP"})]

    messages: list[Any] = [{"role": "user", "content": "Songs?"}]
    first = await client.chat.completions.create(model="chat", messages=messages, tools=[TOP_SONG])
    assert first.choices[0].finish_reason == "tool_calls"
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": "Elemental Hotel"}
                 for c in first.choices[0].message.tool_calls or ()]
    final = await client.chat.completions.create(model="chat", messages=messages, tools=[TOP_SONG])
    assert final.choices[0].message.content == "Rayleigh scattering."
    results = [b["toolResult"]["toolUseId"] for b in upstream.last.json["messages"][-1]["content"]]
    assert results == ["tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "tooluse_second"]


async def test_wrong_secret_moves_on_without_leaking(start_replay: StartReplay, start_gateway: StartGateway,
                                                     make_client: MakeClient) -> None:
    _, gateway = await gateway_for(start_replay, start_gateway, secret="not/the+right/secret0123456789")
    with pytest.raises(openai.APIStatusError) as info:
        await make_client(gateway).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "signature mismatch" in str(info.value) and "not/the+right" not in str(info.value)
