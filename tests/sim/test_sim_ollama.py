"""The sim speaking Ollama's native API: golden shapes over plain HTTP."""

from __future__ import annotations

import orjson
import pytest
from sim_support import WEATHER_ARGS, chat_request, ndjson, running

from stellwerk.sim import reply_words

TEXT = " ".join(reply_words(8, 3))
COUNTERS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


async def test_chat_non_stream() -> None:
    async with running("ollama", latency_ms=20, tokens_per_second=400) as (_, client):
        path, body = chat_request("ollama")
        resp = await client.post(path, json=body)
        assert resp.headers["content-type"] == "application/json"
        answer = resp.json()
        assert (answer["model"], answer["message"], answer["done"]) == ("m", {"role": "assistant", "content": TEXT}, True)
        assert answer["created_at"].endswith("Z") and answer["done_reason"] == "stop"
        assert (answer["prompt_eval_count"], answer["eval_count"]) == (7, 8)
        assert all(isinstance(answer[k], int) for k in COUNTERS)
        assert answer["total_duration"] >= 40_000_000  # 20 ms TTFT + 8 tokens at 400/s, in ns
        body["options"] = {"num_predict": 3}
        answer = (await client.post(path, json=body)).json()
        assert (answer["done_reason"], answer["message"]["content"]) == ("length", " ".join(reply_words(3, 3)))


async def test_chat_streams_ndjson_by_default() -> None:
    async with running("ollama") as (_, client):
        path, body = chat_request("ollama")
        del body["stream"]  # Ollama streams unless told not to
        resp = await client.post(path, json=body)
        assert resp.headers["content-type"] == "application/x-ndjson"
        lines = ndjson(resp.content)
        assert [line["done"] for line in lines] == [False] * 8 + [True]
        assert "".join(line["message"]["content"] for line in lines) == TEXT
        last = lines[-1]
        assert (last["done_reason"], last["prompt_eval_count"], last["eval_count"]) == ("stop", 7, 8)
        assert all(k in last for k in COUNTERS) and not any(k in lines[0] for k in COUNTERS)


async def test_tool_calls_and_json_format() -> None:
    async with running("ollama") as (_, client):
        path, body = chat_request("ollama", tools=True)
        message = (await client.post(path, json=body)).json()["message"]
        assert message["tool_calls"] == [{"function": {"name": "get_weather", "arguments": WEATHER_ARGS}}]
        lines = ndjson((await client.post(path, json={**body, "stream": True})).content)
        assert lines[0]["message"]["tool_calls"][0]["function"]["arguments"] == WEATHER_ARGS
        assert lines[-1]["done"] is True
        _, plain = chat_request("ollama")
        answer = (await client.post(path, json={**plain, "format": "json"})).json()
        assert orjson.loads(answer["message"]["content"]) == {"reply": TEXT}
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        answer = (await client.post(path, json={**plain, "format": schema})).json()
        assert orjson.loads(answer["message"]["content"]) == {"ok": True}


async def test_embed_and_tags() -> None:
    async with running("ollama") as (_, client):
        resp = (await client.post("/api/embed", json={"model": "e", "input": ["alpha", "beta"]})).json()
        assert resp["model"] == "e" and [len(v) for v in resp["embeddings"]] == [64, 64]
        assert resp["prompt_eval_count"] == 3 and isinstance(resp["total_duration"], int)
        one = (await client.post("/api/embed", json={"model": "e", "input": "alpha", "dimensions": 4})).json()
        assert len(one["embeddings"]) == 1 and len(one["embeddings"][0]) == 4
        tags = (await client.get("/api/tags")).json()["models"]
        assert [t["name"] for t in tags] == ["sim-model"] and tags[0]["details"]["format"] == "gguf"


async def test_invalid_requests_and_missing_model() -> None:
    async with running("ollama", models=("llama3",), accept_any_model=False) as (_, client):
        resp = await client.post("/api/chat", json={"messages": []})
        assert resp.status_code == 400 and resp.json() == {"error": "model is required"}
        assert (await client.post("/api/chat", content=b"{oops")).status_code == 400
        assert (await client.post("/api/embed", json={"model": "llama3", "input": [1]})).status_code == 400
        resp = await client.post("/api/chat", json={"model": "mistral", "messages": []})
        assert resp.status_code == 404 and resp.json() == {"error": 'model "mistral" not found, try pulling it first'}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_injected_errors(status: int) -> None:
    async with running("ollama", error_rate=1.0, error_statuses=(status,)) as (_, client):
        path, body = chat_request("ollama")
        resp = await client.post(path, json=body)
        assert resp.status_code == status and set(resp.json()) == {"error"}
        if status == 503:
            assert resp.json()["error"].startswith("server busy")


async def test_rate_limit_context_window_and_content_policy() -> None:
    async with running("ollama", rate_limit_rate=1.0, retry_after_s=1.5) as (sim, client):
        path, body = chat_request("ollama")
        resp = await client.post(path, json=body)
        assert resp.status_code == 429 and resp.headers["retry-after"] == "2" and set(resp.json()) == {"error"}
        sim.update(rate_limit_rate=0.0, context_window=5)
        resp = await client.post(path, json=body)
        assert resp.status_code == 400 and "context length" in resp.json()["error"]
        sim.update(context_window=0, content_policy_trigger="trains")
        assert (await client.post(path, json=body)).status_code == 400


async def test_mid_stream_error_line_and_malformed_line() -> None:
    async with running("ollama", stream_error_rate=1.0, error_statuses=(500,), output_tokens=40) as (sim, client):
        path, body = chat_request("ollama", stream=True)
        lines = ndjson((await client.post(path, json=body)).content)
        assert lines[-1] == {"error": "llama runner process has terminated: exit status 2"}
        assert not any(line.get("done") for line in lines[:-1])
        sim.update(stream_error_rate=0.0, malformed_rate=1.0)
        with pytest.raises(orjson.JSONDecodeError):
            ndjson((await client.post(path, json=body)).content)
