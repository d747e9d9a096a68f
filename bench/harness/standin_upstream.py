"""A stand-in for ``stellwerk sim-provider``: a zero-latency OpenAI-compatible upstream.

Only for developing the harness while the real simulator is unavailable
(``run.py --upstream standin``). It answers ``POST /v1/chat/completions`` with a
fixed completion of ``--output-tokens`` tokens, or, with ``"stream": true``, with
one SSE chunk per token, a usage chunk and ``data: [DONE]``.

Usage: python standin_upstream.py --port 8001 [--output-tokens 20]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import orjson
import uvloop

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse


def completion(tokens: int) -> bytes:
    return orjson.dumps({
        "id": "chatcmpl-standin", "object": "chat.completion", "created": 0, "model": "sim-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " tok" * tokens}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens},
    })


def sse_events(tokens: int) -> list[bytes]:
    def event(choices: list[object], usage: object = None) -> bytes:
        body = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0,
                "model": "sim-model", "choices": choices, "usage": usage}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    first = event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    deltas = [event([{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}]) for _ in range(tokens)]
    last = event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    usage = event([], {"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens})
    return [first, *deltas, last, usage, b"data: [DONE]\n\n"]


def make_handler(tokens: int):  # type: ignore[no-untyped-def]
    body = completion(tokens)
    events = sse_events(tokens)

    async def stream() -> AsyncIterator[bytes]:
        for ev in events:
            yield ev

    async def handler(req: Request) -> Response | StreamingResponse:
        if req.method == "GET":
            return Response(200, b'{"status":"ok"}')
        if b'"stream":true' in req.body.replace(b" ", b""):
            return StreamingResponse(stream())
        return Response(200, body)

    return handler


async def main(port: int, tokens: int) -> None:
    server = HTTPServer(make_handler(tokens))
    await server.start("127.0.0.1", port)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output-tokens", type=int, default=20)
    args = parser.parse_args()
    uvloop.run(main(args.port, args.output_tokens))
