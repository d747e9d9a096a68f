"""Failover across providers of different wire protocols, through the gateway, with the official SDK."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import openai

from provider_support import ReplayUpstream, Reply, chunks_of, json_response
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response, StreamingResponse
from support import CaptureUpstream, error_response

FIXTURES = Path(__file__).parent
OLLAMA_STREAM = (FIXTURES / "ollama" / "fixtures" / "stream_text.ndjson").read_bytes()
OLLAMA_ANSWER = {"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z", "done": True, "done_reason": "stop",
                 "message": {"role": "assistant", "content": "Answered by Ollama."}, "prompt_eval_count": 7,
                 "eval_count": 4}

StartReplay = Callable[[Reply], Awaitable[ReplayUpstream]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]


async def gemini_rate_limited(req: Request) -> Response:
    return json_response({"error": {"code": 429, "message": "You exceeded your current quota.",
                                    "status": "RESOURCE_EXHAUSTED", "details": [
                                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "60s"}]}}, 429)


async def gemini_context_too_long(req: Request) -> Response:
    return json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                                    "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576)."}},
                         400)


async def bedrock_overloaded(req: Request) -> Response:
    return json_response({"message": "Bedrock is unable to process your request."}, 503,
                         [("x-amzn-ErrorType", "ServiceUnavailableException:http://internal.amazon.com/coral/")])


async def ollama_answers(req: Request) -> Response | StreamingResponse:
    if b'"stream":true' in req.body:
        return StreamingResponse(chunks_of(OLLAMA_STREAM), content_type="application/x-ndjson")
    return json_response(OLLAMA_ANSWER)


async def test_openai_then_gemini_fail_and_ollama_answers(
        start_upstream: StartUpstream, start_replay: StartReplay, start_gateway: StartGateway,
        make_client: MakeClient) -> None:
    openai_up = await start_upstream()

    async def broken(req: Request) -> Response:
        return error_response(500, "The server had an error while processing your request.", type_="server_error")

    openai_up.respond = broken
    gemini = await start_replay(gemini_rate_limited)
    ollama = await start_replay(ollama_answers)
    gateway = await start_gateway({"models": [{"name": "chat", "retries": 0, "deployments": [
        {"id": "openai-a", "provider": "openai", "model": "gpt-4o-mini", "api_base": openai_up.base_url, "api_key": "sk-x"},
        {"id": "gemini-b", "provider": "gemini", "model": "gemini-2.0-flash", "api_base": gemini.url("/v1beta"),
         "api_key": "AIza-test"},
        {"id": "ollama-c", "provider": "ollama", "model": "llama3.2", "api_base": ollama.url()},
    ]}]})
    client = make_client(gateway)
    raw = await client.chat.completions.with_raw_response.create(model="chat", messages=[{"role": "user", "content": "Hi"}])
    assert raw.parse().choices[0].message.content == "Answered by Ollama."
    assert raw.headers["x-stellwerk-deployment"] == "ollama-c"
    assert raw.headers["x-stellwerk-attempts"] == "3"
    assert (openai_up.count, len(gemini.requests), len(ollama.requests)) == (1, 1, 1)

    stream = await client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "Hi"}], stream=True, stream_options={"include_usage": True})
    assert stream.headers["x-stellwerk-deployment"] == "ollama-c"
    chunks = [c async for c in stream.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The sky is blue."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 282


async def test_context_too_long_and_overload_fail_over_to_ollama_stream(
        start_replay: StartReplay, start_gateway: StartGateway, make_client: MakeClient) -> None:
    gemini = await start_replay(gemini_context_too_long)
    bedrock = await start_replay(bedrock_overloaded)
    ollama = await start_replay(ollama_answers)
    gateway = await start_gateway({"models": [{"name": "chat", "retries": 0, "deployments": [
        {"id": "gemini-a", "provider": "gemini", "model": "gemini-2.0-flash", "api_base": gemini.url("/v1beta")},
        {"id": "bedrock-b", "provider": "bedrock", "model": "amazon.nova-micro-v1:0", "region": "us-east-1",
         "api_base": bedrock.url(), "api_key": "bedrock-api-key-test"},
        {"id": "ollama-c", "provider": "ollama", "model": "llama3.2", "api_base": ollama.url()},
    ]}]})
    stream = await make_client(gateway).chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "A very long prompt"}], stream=True)
    assert stream.headers["x-stellwerk-deployment"] == "ollama-c"
    assert stream.headers["x-stellwerk-attempts"] == "3"
    assert "".join([c.choices[0].delta.content or "" async for c in stream.parse() if c.choices]) == "The sky is blue."
    assert bedrock.last.headers["authorization"] == "Bearer bedrock-api-key-test"
    assert bedrock.last.path == "/model/amazon.nova-micro-v1%3A0/converse-stream"
