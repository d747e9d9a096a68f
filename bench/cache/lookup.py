"""What the response cache adds to a request, measured in-process (wall clock, one core, p50 of many runs).

- **exact lookup on a miss**: the cache stage's work before the request goes on (controls, scope, the
  exact key of a ~1 KB request, a memory-cache ``get``), the goal is at most 10 µs;
- **the whole stage on a miss**: the lookup plus storing the answer (encode, a task, the ``put``);
- **exact hit**: the lookup and building the answer from the entry;
- **semantic lookup with 100,000 entries**, all in *one* semantic context (the worst case: one system
  prompt, one tenant, no numbers or names to partition by): embedding the last user message, the
  guard's signature, the context key, the nearest vector, decoding and guarding the candidate.
  The goal is p50 at most 2 ms.

    .venv/bin/python bench/cache/lookup.py [--entries 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent.parent))

from harness.load import chat_body

from stellwerk.compose import semantic_embed
from stellwerk.pipeline import Call, ChatResult, Operation, Reply
from stellwerk.pipeline.cache import ResponseCache
from stellwerk.pipeline.cache.entry import encode
from stellwerk.routing import Router
from stellwerk.state import MemoryCache
from stellwerk.usage import Usage

ANSWER = orjson.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "up", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "It is in Basel since this morning."},
     "finish_reason": "stop"}], "usage": {"prompt_tokens": 250, "completion_tokens": 12, "total_tokens": 262}})


def router(mode: str) -> Router:
    return Router.from_dict({"models": [{"name": "chat", "cache": {"mode": mode}, "deployments": [
        {"id": "up", "provider": "openai", "model": "up", "api_base": "http://127.0.0.1:9/v1"}]}]})


def p50_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


async def exact(runs: int) -> None:
    r = router("exact")
    stage = r.response_cache
    assert stage is not None
    body = orjson.loads(chat_body(False))
    result = ChatResult(orjson.loads(ANSWER), ANSWER, "chat", "up", 1, Usage(250, 12), 0.001, 0.1, "rid")

    async def upstream(call: Call) -> Reply:
        return result

    calls = [r.call(Operation.CHAT, {**body, "seed": i}) for i in range(runs)]
    from stellwerk.pipeline.cache.keys import exact_key, read_controls, scope_id

    lookup: list[float] = []
    for call in calls:  # what the stage does before it calls on
        start = time.perf_counter()
        options = call.table.models[call.model].config.cache
        read_controls(call.headers)
        key = exact_key(call.body, scope_id(options.scope, call.principal))
        await stage.backend.get(key)
        lookup.append(time.perf_counter() - start)
    direct: list[float] = []
    staged: list[float] = []
    for call in calls:
        start = time.perf_counter()
        await upstream(call)
        direct.append(time.perf_counter() - start)
        start = time.perf_counter()
        await stage(call, upstream)
        staged.append(time.perf_counter() - start)
    await stage.settle()
    hits: list[float] = []
    for call in calls:
        start = time.perf_counter()
        reply = await stage(call, upstream)
        hits.append(time.perf_counter() - start)
        assert reply.headers[0][1] == "hit"
    print(f"exact lookup on a miss (key of a {len(chat_body(False))} B request + get): p50 {p50_us(lookup):.1f} µs")
    print(f"the whole cache stage on a miss (lookup + store): p50 {p50_us(staged) - p50_us(direct):.1f} µs")
    print(f"an exact hit (lookup + answer from the entry): p50 {p50_us(hits):.1f} µs")
    await r.aclose()


async def semantic(entries: int, runs: int) -> None:
    embed = semantic_embed()
    backend = MemoryCache(time.monotonic, max_bytes=1 << 31)
    stage = ResponseCache(backend, clock=time.monotonic, embed=embed)
    r = router("semantic")
    body = orjson.loads(chat_body(False))
    # Questions without numbers, names or other facts: one guard signature, so one partition of the index.
    nouns = ["parcel", "package", "order", "delivery", "box", "shipment", "letter", "crate", "pallet", "return"]
    verbs = ["is", "went", "got stuck", "ended", "is waiting", "was sent", "can be found", "was put"]
    questions = [f"where {noun} {verb} and what can i do about it" for noun in nouns for verb in verbs] * 40

    def call_for(question: str) -> Call:
        return r.call(Operation.CHAT, {**body, "messages": [body["messages"][0], {"role": "user", "content": question}]})

    probe = stage._probe(call_for("where is my order"), "anonymous")
    assert probe is not None
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((entries, len(probe.vector))).astype(np.float32)
    value = encode(ANSWER, Usage(250, 12), 0.001, "up", "an unrelated stored question")
    for i in range(entries):
        await backend.put(f"k{i}", value, 3600, model="chat", scope=probe.scope, vector=vectors[i])
    options = r.table.models["chat"].config.cache
    samples: list[float] = []
    for question in questions[:runs]:
        c = call_for(question)
        start = time.perf_counter()
        p = stage._probe(c, "anonymous")
        assert p is not None and p.scope == probe.scope  # the same partition: all 100,000 candidates
        await stage._lookup("x-missing", p, options, stage.tally("chat"))
        samples.append(time.perf_counter() - start)
    print(f"semantic lookup, {entries:,} entries in one context ({len(probe.vector)}-d): "
          f"p50 {p50_us(samples) / 1000:.2f} ms, p90 {np.percentile(samples, 90) * 1000:.2f} ms")
    await r.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(exact(args.runs))
    asyncio.run(semantic(args.entries, 300))


if __name__ == "__main__":
    main()
