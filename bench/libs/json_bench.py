"""µs per loads+dumps of a typical chat request (~1 KB) and response: orjson, msgspec.json, stdlib json.

A gateway decodes each request, edits a field or two, and encodes it again for
the upstream; the same for the answer. Each library's best of ``--repeat``
timings is reported (the minimum is the least noisy estimate on a shared
machine). msgspec is measured twice: decoding to plain dicts, and to typed
``Struct``s (its strength, but then the gateway must model the schema).

Usage: python json_bench.py [--number 10000] [--repeat 7]; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

_SYSTEM = ("You are a helpful assistant for a logistics company. Answer precisely and briefly, cite the "
           "relevant policy section when you can, and never invent shipment numbers. ") * 3
REQUEST = json.dumps({
    "model": "chat",
    "messages": [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": "Where is shipment 4711? It left Hamburg on Monday and should have "
                                    "reached Basel by now. What are my options?"},
    ],
    "temperature": 0.2, "max_tokens": 64, "user": "bench", "stream": False,
}).encode()
RESPONSE = json.dumps({
    "id": "chatcmpl-8f2a", "object": "chat.completion", "created": 1732780000, "model": "sim-model",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": "Shipment 4711 cleared customs in Weil am Rhein this morning " * 3}}],
    "usage": {"prompt_tokens": 187, "completion_tokens": 48, "total_tokens": 235},
}).encode()


class Message(msgspec.Struct):
    role: str
    content: str


class ChatRequest(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    user: str | None = None
    stream: bool = False


class Choice(msgspec.Struct):
    index: int
    finish_reason: str | None
    message: Message


class Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(msgspec.Struct):
    id: str
    object: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


def _roundtrip(loads: Callable[[bytes], Any], dumps: Callable[[Any], bytes], doc: bytes) -> Callable[[], bytes]:
    def run() -> bytes:
        obj = loads(doc)
        return dumps(obj)

    return run


_encoder = msgspec.json.Encoder()
LIBS: dict[str, tuple[Callable[[bytes], Any], Callable[[bytes], Any], Callable[[Any], bytes]]] = {
    # name: (loads for request, loads for response, dumps)
    "orjson": (orjson.loads, orjson.loads, orjson.dumps),
    "msgspec.json (dict)": (msgspec.json.decode, msgspec.json.decode, _encoder.encode),
    "msgspec.json (Struct)": (msgspec.json.Decoder(ChatRequest).decode, msgspec.json.Decoder(ChatResponse).decode,
                              _encoder.encode),
    "json (stdlib)": (json.loads, json.loads, lambda o: json.dumps(o, separators=(",", ":")).encode()),
}


def measure(number: int, repeat: int) -> list[dict[str, object]]:
    out = []
    for name, (load_req, load_resp, dumps) in LIBS.items():
        row: dict[str, object] = {"library": name}
        for label, loads, doc in (("request", load_req, REQUEST), ("response", load_resp, RESPONSE)):
            fn = _roundtrip(loads, dumps, doc)
            best = min(timeit.repeat(fn, number=number, repeat=repeat))
            row[f"{label}_us"] = round(best / number * 1e6, 2)
        out.append(row)
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--number", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args()
    print(json.dumps({"request_bytes": len(REQUEST), "response_bytes": len(RESPONSE),
                      "results": measure(a.number, a.repeat)}))
