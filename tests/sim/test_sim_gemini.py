"""The sim speaking the Gemini API (v1beta REST): golden shapes over plain HTTP."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sim_support import KEY, WEATHER_ARGS, chat_request, running, sse_events

from stellwerk.sim import reply_words

TEXT = " ".join(reply_words(8, 3))
USAGE = {"promptTokenCount": 7, "candidatesTokenCount": 8, "totalTokenCount": 15}


def candidate_text(chunk: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for c in chunk.get("candidates", []) for p in c["content"]["parts"])


async def test_generate_content() -> None:
    async with running("gemini") as (_, client):
        path, body = chat_request("gemini")
        resp = (await client.post(path, json=body)).json()
        (candidate,) = resp["candidates"]
        assert candidate["content"] == {"parts": [{"text": TEXT}], "role": "model"}
        assert (candidate["finishReason"], candidate["index"]) == ("STOP", 0)
        assert {k: resp["usageMetadata"][k] for k in USAGE} == USAGE
        assert resp["modelVersion"] == "m" and resp["responseId"]
        body["generationConfig"] = {"maxOutputTokens": 3}
        resp = (await client.post(path, json=body)).json()
        assert resp["candidates"][0]["finishReason"] == "MAX_TOKENS" and candidate_text(resp) == " ".join(reply_words(3, 3))


async def test_stream_sse_and_json_array() -> None:
    async with running("gemini") as (_, client):
        path, body = chat_request("gemini", stream=True)
        resp = await client.post(path, json=body)
        assert resp.headers["content-type"] == "text/event-stream"
        assert resp.content.count(b"\r\n\r\n") == 9  # Google separates events with CRLF pairs
        chunks = [data for _, data in sse_events(resp.content)]
        assert "".join(candidate_text(c) for c in chunks) == TEXT
        assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * 8 + ["STOP"]
        assert {k: chunks[-1]["usageMetadata"][k] for k in USAGE} == USAGE
        assert len({c["responseId"] for c in chunks}) == 1
        resp = await client.post(path.replace("?alt=sse", ""), json=body)
        assert resp.headers["content-type"] == "application/json"
        array = orjson.loads(resp.content)
        assert "".join(candidate_text(c) for c in array) == TEXT
        assert array[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_function_call_and_json_mode() -> None:
    async with running("gemini") as (_, client):
        path, body = chat_request("gemini", tools=True)
        resp = (await client.post(path, json=body)).json()
        assert resp["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "get_weather", "args": WEATHER_ARGS}}]
        stream_path, _ = chat_request("gemini", stream=True)
        chunks = [d for _, d in sse_events((await client.post(stream_path, json=body)).content)]
        assert chunks[-1]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"] == WEATHER_ARGS
        none = {**body, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}
        assert candidate_text((await client.post(path, json=none)).json()) == TEXT
        upper: Any = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}
        other = {"name": "other", "parameters": upper}
        body["tools"][0]["functionDeclarations"].append(other)
        body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["other"]}}
        call = (await client.post(path, json=body)).json()["candidates"][0]["content"]["parts"][0]["functionCall"]
        assert call == {"name": "other", "args": {"n": 1}}
        _, plain = chat_request("gemini")
        plain["generationConfig"] = {"responseMimeType": "application/json", "responseSchema": upper}
        assert orjson.loads(candidate_text((await client.post(path, json=plain)).json())) == {"n": 1}


async def test_embeddings_count_tokens_and_models() -> None:
    async with running("gemini") as (_, client):
        one = {"content": {"parts": [{"text": "alpha"}]}, "outputDimensionality": 8}
        resp = (await client.post("/v1beta/models/emb:embedContent", json=one)).json()
        assert len(resp["embedding"]["values"]) == 8
        batch = {"requests": [{"model": "models/emb", **one}, {"model": "models/emb", "content": {"parts": [{"text": "b"}]}}]}
        resp = (await client.post("/v1beta/models/emb:batchEmbedContents", json=batch)).json()
        assert [len(e["values"]) for e in resp["embeddings"]] == [8, 8]
        assert resp["embeddings"][0]["values"] != resp["embeddings"][1]["values"]
        _, body = chat_request("gemini")
        assert (await client.post("/v1beta/models/m:countTokens", json=body)).json() == {"totalTokens": 7}
        assert (await client.post("/v1beta/models/m:countTokens", content=b"{oops")).status_code == 400
        models = (await client.get("/v1beta/models")).json()["models"]
        assert [m["name"] for m in models] == ["models/sim-model"]
        assert (await client.get("/v1/models/other")).json()["name"] == "models/other"


async def test_key_in_header_or_query() -> None:
    async with running("gemini") as (_, client):
        path, body = chat_request("gemini")
        client.headers.pop("x-goog-api-key")
        resp = await client.post(path, json=body)
        assert resp.status_code == 403 and resp.json()["error"]["status"] == "PERMISSION_DENIED"
        assert (await client.post(path + f"?key={KEY}", json=body)).status_code == 200
        resp = await client.post(path + "?key=nope", json=body)
        assert resp.status_code == 400
        assert resp.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_invalid_request() -> None:
    async with running("gemini") as (sim, client):
        path, _ = chat_request("gemini")
        resp = await client.post(path, json={"contents": []})
        assert resp.status_code == 400
        error = resp.json()["error"]
        assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT") and "contents" in error["message"]
        assert (await client.post(path, content=b"{oops")).status_code == 400
        assert sim.stats.invalid == 2


@pytest.mark.parametrize(
    ("status", "rpc_status"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"), (502, "INTERNAL")]
)
async def test_injected_errors(status: int, rpc_status: str) -> None:
    async with running("gemini", error_rate=1.0, error_statuses=(status,)) as (_, client):
        path, body = chat_request("gemini")
        resp = await client.post(path, json=body)
        assert resp.status_code == status
        assert set(resp.json()["error"]) == {"code", "message", "status"}
        assert (resp.json()["error"]["code"], resp.json()["error"]["status"]) == (status, rpc_status)


async def test_rate_limit_context_window_and_safety_block() -> None:
    async with running("gemini", rate_limit_rate=1.0, retry_after_s=3) as (sim, client):
        path, body = chat_request("gemini")
        resp = await client.post(path, json=body)
        assert resp.status_code == 429
        error = resp.json()["error"]
        assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
        retry = [d for d in error["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
        assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]
        sim.update(rate_limit_rate=0.0, context_window=5)
        resp = await client.post(path, json=body)
        assert resp.status_code == 400 and resp.json()["error"]["status"] == "INVALID_ARGUMENT"
        assert "input token count (7) exceeds the maximum number of tokens allowed (5)" in resp.json()["error"]["message"]
        sim.update(context_window=0, content_policy_trigger="trains")
        resp = await client.post(path, json=body)
        assert resp.status_code == 200
        blocked = resp.json()
        assert "candidates" not in blocked and blocked["promptFeedback"]["blockReason"] == "SAFETY"
        stream_path, _ = chat_request("gemini", stream=True)
        chunks = sse_events((await client.post(stream_path, json=body)).content)
        assert [c["promptFeedback"]["blockReason"] for _, c in chunks] == ["SAFETY"]
        array = orjson.loads((await client.post(stream_path.replace("?alt=sse", ""), json=body)).content)
        assert [c["promptFeedback"]["blockReason"] for c in array] == ["SAFETY"]


async def test_mid_stream_error_chunk() -> None:
    async with running("gemini", stream_error_rate=1.0, error_statuses=(503,), output_tokens=40) as (sim, client):
        path, body = chat_request("gemini", stream=True)
        chunks = [d for _, d in sse_events((await client.post(path, json=body)).content)]
        assert chunks[-1] == {"error": {"code": 503, "message": chunks[-1]["error"]["message"], "status": "UNAVAILABLE"}}
        assert all("candidates" in c for c in chunks[:-1])
        array = orjson.loads((await client.post(path.replace("?alt=sse", ""), json=body)).content)
        assert array[-1]["error"]["status"] == "UNAVAILABLE"
        sim.update(stream_error_rate=0.0, malformed_rate=1.0)
        with pytest.raises(orjson.JSONDecodeError):
            sse_events((await client.post(path, json=body)).content)
