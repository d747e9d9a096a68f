"""Issue 9, item 12 (and the client's head limit): hostile upstreams cost bounded memory and linear CPU.

Bounds on this process's CPU time here are guards orders of magnitude above the expected time (the old,
quadratic parsers took minutes for these inputs), never measurements; CPU time, not wall time, so that the load
of the machine does not count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from stellwerk.errors import UpstreamError
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, StreamingResponse
from stellwerk.providers.ndjson import NDJSONParser
from stellwerk.providers.sse import MAX_EVENT, SSEParser
from support import GUARD, USER, CaptureUpstream, config, deployment, model, request

StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
MiB = 1 << 20


def test_an_sse_event_without_end_is_refused_at_the_cap() -> None:
    parser = SSEParser()
    piece = b"data: " + b"x" * (64 * 1024 - 6)
    fed = 0
    with pytest.raises(UpstreamError, match="larger than 1048576 bytes"):
        for _ in range(32 * 16):  # 32 MiB, if it were all accepted
            parser.feed(piece)
            fed += len(piece)
    assert fed <= MAX_EVENT


def test_sse_many_small_reads_cost_linear_time() -> None:
    parser = SSEParser()
    started = time.process_time()
    events = []
    for _ in range(5):
        for _ in range(20_000):
            events += parser.feed(b"abcd" if events or parser.pending else b"data: abcd")
        events += parser.feed(b"\n\n")
        events += parser.feed(b"data: ")
    assert len(events) == 5
    assert len(events[0][1]) == 4 * 20_000
    assert time.process_time() - started < GUARD  # quadratic rescans: minutes


def test_sse_blank_lines_split_across_reads_with_every_line_ending() -> None:
    for ending in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        parser = SSEParser()
        assert parser.feed(b"data: one") == []
        assert parser.feed(ending[:1]) == []
        assert parser.feed(ending[1:] + b"data: two" + ending) == [("", b"one"), ("", b"two")]


def test_an_ndjson_line_without_end_is_refused_at_the_cap() -> None:
    parser = NDJSONParser()
    with pytest.raises(UpstreamError, match="larger than"):
        for _ in range(32 * 16):
            parser.feed(b"y" * 65536)
    parser = NDJSONParser()
    assert parser.feed(b'{"a":') == []
    assert parser.feed(b'1}\n{"b"') == [b'{"a":1}']
    assert parser.pending == b'{"b"'


async def test_an_upstream_stream_without_event_ends_fails_fast(start_upstream: StartUpstream,
                                                                start_gateway: StartGateway) -> None:
    async def respond(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"data: "
            for _ in range(512):  # 32 MiB and never a blank line
                yield b"z" * 65536
        return StreamingResponse(chunks())

    up = await start_upstream(respond)
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url), timeout=60, retries=0)))
    started = time.process_time()
    response = await request(gateway.port, "POST", "/v1/chat/completions",
                             {"model": "chat", "messages": USER, "stream": True})
    assert response.status == 502
    assert "larger than 1048576 bytes" in response.json["error"]["message"]
    assert time.process_time() - started < GUARD


async def _raw_upstream(answer: bytes) -> tuple[asyncio.Server, str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


async def test_oversized_upstream_response_headers_are_refused(start_gateway: StartGateway) -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"x-junk: " + b"j" * (100 * 1024) + b"\r\n"
    server, url = await _raw_upstream(answer)  # ... and the head never ends
    try:
        gateway = await start_gateway(config(model("chat", deployment("a", url), timeout=60, retries=0)))
        response = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        assert response.status == 502
        assert "headers exceed 65536 bytes" in response.json["error"]["message"]
    finally:
        server.close()
