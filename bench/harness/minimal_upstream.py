"""The cheapest upstream we can write in Python: uvloop + httptools, a fixed answer, no framework.

``run.py --upstream minimal`` uses it so that the upstream's own cost (it shares CPU 0 with the load
generator) limits the proxies as little as possible. It answers every ``POST`` with the same chat
completion of ``--output-tokens`` tokens, or, when the body asks for ``"stream": true``, with the same
SSE events as ``stellwerk sim-provider`` (a role chunk, one chunk per token, a finish chunk, a usage
chunk and ``data: [DONE]``), each event in its own chunked frame and its own ``write`` (so a proxy reads
them as they come, like from a real provider). ``GET`` answers ``{"status":"ok"}``.

Usage: python minimal_upstream.py --port 8001 [--output-tokens 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Coroutine

import httptools
import uvloop


def completion(tokens: int) -> bytes:
    return json.dumps({
        "id": "chatcmpl-minimal", "object": "chat.completion", "created": 0, "model": "sim-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " tok" * tokens}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens},
    }, separators=(",", ":")).encode()


def sse_events(tokens: int) -> list[bytes]:
    """The streamed answer's SSE events: a role chunk, one chunk per token, a finish chunk, usage, [DONE]."""
    def event(choices: list[object], usage: object = None) -> bytes:
        body = {"id": "chatcmpl-minimal", "object": "chat.completion.chunk", "created": 0,
                "model": "sim-model", "choices": choices, "usage": usage}
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    events = [event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    events += [event([{"index": 0, "delta": {"content": " tok"}, "finish_reason": None}]) for _ in range(tokens)]
    return [*events, event([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            event([], {"prompt_tokens": 30, "completion_tokens": tokens, "total_tokens": 30 + tokens}),
            b"data: [DONE]\n\n"]


class Answers:
    def __init__(self, tokens: int) -> None:
        body = completion(tokens)
        self.json = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                     % len(body)) + body
        self.stream_head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        self.frames = [b"%x\r\n%s\r\n" % (len(e), e) for e in sse_events(tokens)] + [b"0\r\n\r\n"]
        health = b'{"status":"ok"}'
        self.health = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(health), health)


class Connection(asyncio.Protocol):
    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport, answers = self.transport, self.answers
        assert transport is not None
        if self.parser.get_method() == b"GET":
            transport.write(answers.health)
            return
        body = b"".join(self.body)
        if b'"stream":true' in body or b'"stream": true' in body:
            transport.write(answers.stream_head)
            for frame in answers.frames:
                transport.write(frame)
        else:
            transport.write(answers.json)


async def main(port: int, tokens: int) -> None:
    answers = Answers(tokens)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(answers), "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def cli(serve: Callable[[int, int], Coroutine[object, object, None]], description: str) -> None:
    """``--port`` and ``--output-tokens`` from the command line, then ``serve(port, tokens)`` on uvloop."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--output-tokens", type=int, default=20)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.output_tokens))


if __name__ == "__main__":
    cli(main, __doc__.splitlines()[0])
