"""The sim speaking Bedrock Runtime Converse: golden shapes and event-stream frames over plain HTTP,
then botocore (if installed) as the reference parser of the binary framing and the error headers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from sim_support import KEY, WEATHER_ARGS, chat_request, decode_frames, running

from stellwerk.sim import reply_words
from stellwerk.sim.eventstream import event_headers, frame, header_block
from support import GUARD

TEXT = " ".join(reply_words(8, 3))


def test_frame_layout_by_hand() -> None:
    headers = header_block([(":event-type", "messageStart")])
    assert headers == b"\x0b:event-type\x07\x00\x0cmessageStart"
    raw = frame(headers, b"{}")
    assert len(raw) == 16 + len(headers) + 2 and raw[:8] == b"\x00\x00\x00\x2d\x00\x00\x00\x1b"
    assert decode_frames(raw) == [({":event-type": "messageStart"}, {})]
    assert event_headers("metadata").endswith(b"\x0d:message-type\x07\x00\x05event")


async def test_converse() -> None:
    async with running("bedrock", latency_ms=30) as (_, client):
        path, body = chat_request("bedrock")
        resp = await client.post(path, json=body)
        assert resp.status_code == 200 and resp.headers["x-amzn-requestid"]
        answer = resp.json()
        assert answer["output"] == {"message": {"role": "assistant", "content": [{"text": TEXT}]}}
        assert answer["stopReason"] == "end_turn"
        assert answer["usage"] == {"inputTokens": 7, "outputTokens": 8, "totalTokens": 15}
        assert answer["metrics"]["latencyMs"] >= 30
        body["inferenceConfig"] = {"maxTokens": 3}
        assert (await client.post(path, json=body)).json()["stopReason"] == "max_tokens"


async def test_converse_stream_frames() -> None:
    async with running("bedrock") as (_, client):
        path, body = chat_request("bedrock", stream=True)
        resp = await client.post(path.replace("/m/", "/anthropic.claude-3-haiku-20240307-v1%3A0/"), json=body)
        assert resp.headers["content-type"] == "application/vnd.amazon.eventstream"
        frames = decode_frames(resp.content)
        assert {h[":message-type"] for h, _ in frames} == {"event"}
        assert {h[":content-type"] for h, _ in frames} == {"application/json"}
        names = [h[":event-type"] for h, _ in frames]
        assert names == ["messageStart", *["contentBlockDelta"] * 8, "contentBlockStop", "messageStop", "metadata"]
        assert frames[0][1] == {"role": "assistant"}
        assert "".join(p["delta"]["text"] for _, p in frames[1:9]) == TEXT
        assert frames[-2][1] == {"stopReason": "end_turn"}
        assert frames[-1][1]["usage"] == {"inputTokens": 7, "outputTokens": 8, "totalTokens": 15}


async def test_tool_use() -> None:
    async with running("bedrock") as (_, client):
        path, body = chat_request("bedrock", tools=True)
        answer = (await client.post(path, json=body)).json()
        (block,) = answer["output"]["message"]["content"]
        assert (block["toolUse"]["name"], block["toolUse"]["input"], answer["stopReason"]) == (
            "get_weather",
            WEATHER_ARGS,
            "tool_use",
        )
        stream_path, _ = chat_request("bedrock", stream=True)
        frames = decode_frames((await client.post(stream_path, json=body)).content)
        assert frames[1][0][":event-type"] == "contentBlockStart"
        assert frames[1][1]["start"]["toolUse"]["name"] == "get_weather"
        fragments = [p["delta"]["toolUse"]["input"] for h, p in frames if h[":event-type"] == "contentBlockDelta"]
        assert orjson.loads("".join(fragments)) == WEATHER_ARGS
        assert frames[-2][1] == {"stopReason": "tool_use"}
        forced: Any = {**body["toolConfig"], "toolChoice": {"tool": {"name": "nope"}}}
        assert (await client.post(path, json={**body, "toolConfig": forced})).status_code == 400


async def test_authorization_is_required() -> None:
    async with running("bedrock") as (_, client):
        path, body = chat_request("bedrock")
        resp = await client.post(path, json=body, headers={"authorization": ""})
        assert resp.status_code == 403 and resp.headers["x-amzn-errortype"].startswith("MissingAuthenticationToken")
        resp = await client.post(path, json=body, headers={"authorization": "Basic abc"})
        assert resp.status_code == 403 and resp.headers["x-amzn-errortype"].startswith("UnrecognizedClientException:")
        assert (await client.post(path, json=body, headers={"authorization": f"Bearer {KEY}"})).status_code == 200
    async with running("bedrock", api_key=None) as (_, client):
        assert (await client.post(path, json=body)).status_code == 200
        assert (await client.post(path, json=body, headers={"authorization": ""})).status_code == 403


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (503, "ServiceUnavailableException"),
        (500, "InternalServerException"),
        (408, "ModelTimeoutException"),
        (424, "ModelErrorException"),
    ],
)
async def test_injected_errors(status: int, exception: str) -> None:
    async with running("bedrock", error_rate=1.0, error_statuses=(status,)) as (_, client):
        path, body = chat_request("bedrock")
        resp = await client.post(path, json=body)
        assert resp.status_code == status
        assert resp.headers["x-amzn-errortype"].split(":")[0] == exception
        assert set(resp.json()) == {"message"}


async def test_throttling_context_window_and_content_filter() -> None:
    async with running("bedrock", rate_limit_rate=1.0) as (sim, client):
        path, body = chat_request("bedrock")
        resp = await client.post(path, json=body)
        assert resp.status_code == 429 and resp.headers["x-amzn-errortype"].startswith("ThrottlingException")
        sim.update(rate_limit_rate=0.0, context_window=5)
        resp = await client.post(path, json=body)
        assert resp.status_code == 400 and resp.json() == {"message": "Input is too long for requested model."}
        assert resp.headers["x-amzn-errortype"].startswith("ValidationException")
        sim.update(context_window=0, content_policy_trigger="trains")
        answer = (await client.post(path, json=body)).json()
        assert (answer["stopReason"], answer["output"]["message"]["content"]) == ("content_filtered", [])
        stream_path, _ = chat_request("bedrock", stream=True)
        frames = decode_frames((await client.post(stream_path, json=body)).content)
        assert [h[":event-type"] for h, _ in frames] == ["messageStart", "messageStop", "metadata"]


@pytest.mark.parametrize(
    ("status", "exception"),
    [(429, "throttlingException"), (503, "serviceUnavailableException"), (500, "internalServerException"),
     (424, "modelStreamErrorException")],
)  # fmt: skip
async def test_mid_stream_exception_frame(status: int, exception: str) -> None:
    async with running("bedrock", stream_error_rate=1.0, error_statuses=(status,), output_tokens=40) as (_, client):
        path, body = chat_request("bedrock", stream=True)
        frames = decode_frames((await client.post(path, json=body)).content)
        headers, payload = frames[-1]
        assert headers == {":exception-type": exception, ":content-type": "application/json", ":message-type": "exception"}
        assert set(payload) == {"message"}
        assert "messageStop" not in [h.get(":event-type") for h, _ in frames]


async def test_malformed_frame_fails_its_checksum() -> None:
    async with running("bedrock", malformed_rate=1.0) as (_, client):
        path, body = chat_request("bedrock", stream=True)
        with pytest.raises(AssertionError, match="message CRC"):
            decode_frames((await client.post(path, json=body)).content)


# -- botocore as the reference -------------------------------------------------------------------------------------------
async def test_botocore_event_stream_buffer_parses_the_frames() -> None:
    eventstream = pytest.importorskip("botocore.eventstream")
    async with running("bedrock", stream_error_rate=1.0, error_statuses=(429,), output_tokens=40) as (sim, client):
        path, body = chat_request("bedrock", stream=True, tools=True)
        sim.update(stream_error_rate=0.0)
        buffer = eventstream.EventStreamBuffer()
        buffer.add_data((await client.post(path, json=body)).content)
        messages = list(buffer)
        assert [m.headers[":event-type"] for m in messages][:2] == ["messageStart", "contentBlockStart"]
        assert orjson.loads(messages[-1].payload)["usage"]["totalTokens"] > 0
        sim.update(stream_error_rate=1.0)
        buffer = eventstream.EventStreamBuffer()
        buffer.add_data((await client.post(path, json=body)).content)
        last = list(buffer)[-1].to_response_dict()
        assert last["status_code"] == 400 and last["headers"][":exception-type"] == "throttlingException"


async def test_botocore_client_round_trip() -> None:
    pytest.importorskip("botocore")
    import botocore.config
    import botocore.exceptions
    import botocore.session

    async with running("bedrock", output_tokens=8) as (sim, _):
        config = botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=GUARD, read_timeout=GUARD)
        bedrock = botocore.session.get_session().create_client(
            "bedrock-runtime", region_name="us-east-1", endpoint_url=sim.base_url, aws_access_key_id=KEY,
            aws_secret_access_key="secret", config=config,
        )  # fmt: skip
        _, body = chat_request("bedrock", tools=True)
        model = "anthropic.claude-3-haiku-20240307-v1:0"  # the colon travels percent-encoded

        def converse() -> Any:
            return bedrock.converse(modelId=model, messages=body["messages"])

        def converse_stream() -> list[Any]:
            answer = bedrock.converse_stream(modelId=model, messages=body["messages"], toolConfig=body["toolConfig"])
            try:
                return list(answer["stream"])
            finally:
                answer["stream"].close()

        try:
            answer = await asyncio.to_thread(converse)
            assert answer["output"]["message"]["content"] == [{"text": TEXT}]
            events = await asyncio.to_thread(converse_stream)
            assert list(events[1]) == ["contentBlockStart"] and events[-2] == {"messageStop": {"stopReason": "tool_use"}}
            sim.update(rate_limit_rate=1.0)
            with pytest.raises(botocore.exceptions.ClientError) as info:
                await asyncio.to_thread(converse)
            assert info.value.response["Error"]["Code"] == "ThrottlingException"
            sim.update(rate_limit_rate=0.0, stream_error_rate=1.0, error_statuses=[503])
            with pytest.raises(botocore.exceptions.EventStreamError) as stream_info:
                await asyncio.to_thread(converse_stream)
            assert stream_info.value.response["Error"]["Code"] == "serviceUnavailableException"
            sim.update(stream_error_rate=0.0, context_window=1)
            with pytest.raises(botocore.exceptions.ClientError, match="Input is too long for requested model"):
                await asyncio.to_thread(converse)
        finally:
            bedrock.close()
