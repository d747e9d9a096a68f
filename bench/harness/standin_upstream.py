"""A stand-in for ``stellwerk sim-provider``: a zero-latency OpenAI-compatible upstream.

Only for developing the harness while the real simulator is unavailable
(``run.py --upstream standin``). It answers ``POST /v1/chat/completions`` with a
fixed completion of ``--output-tokens`` tokens, or, with ``"stream": true``, with
one SSE chunk per token, a usage chunk and ``data: [DONE]``.

Usage: python standin_upstream.py --port 8001 [--output-tokens 20]
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from minimal_upstream import cli, completion, sse_events

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse


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
    cli(main, __doc__.splitlines()[0])
