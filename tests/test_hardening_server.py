"""Issue 9: raw-socket probes of hostile clients against the HTTP server (items 2, 5, 7, 10, 11).

Memory is measured with ``tracemalloc`` in-process (deterministic: Python allocations only, not the
kernel's socket buffers), over a phase where the client sends as much as the server takes and reads nothing.
Timeouts use small configured values; tests assert the behaviour (408 and close), never a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest

from stellwerk.http.server import MAX_HEAD_SIZE, HTTPServer, Request, Response, StreamingResponse
from support import GUARD, RawConnection, http_request

Serve = Callable[..., Awaitable[HTTPServer]]
MiB = 1 << 20


class Gate:
    """``/wait`` blocks until released; other paths answer at once with a small body (2 KiB for ``/health``)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = 0

    async def __call__(self, req: Request) -> Response:
        self.handled += 1
        if req.path == "/wait":
            self.started.set()
            await self.release.wait()
        body = b"h" * 2048 if req.path == "/health" else orjson.dumps({"path": req.path, "size": len(req.body)})
        return Response(200, body)


def _socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def _push_until_stalled(sock: socket.socket, data: memoryview, stalled_for: float = 0.3) -> int:
    """Send what the peer takes; return the bytes sent once it took nothing for ``stalled_for`` seconds."""
    sent = idle = 0.0
    async with asyncio.timeout(GUARD * 6):
        while sent < len(data) and idle < stalled_for:
            try:
                n = sock.send(data[int(sent):int(sent) + 65536])
            except BlockingIOError:
                n = 0
            if n:
                sent += n
                idle = 0.0
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.01)
                idle += 0.01
    return int(sent)


STATUS_LINE = b"HTTP/1.1 200 OK"


async def _count_responses(sock: socket.socket, rest: memoryview, expected: int) -> int:
    """Send ``rest`` while reading; return how many responses came back once ``expected`` did (or the peer closed).

    A status line may be split between two reads (where one ends depends on the scheduling of both sides): the
    tail of the previous read is kept, one byte shorter than the line, so that no line is counted twice."""
    loop = asyncio.get_running_loop()
    sender = asyncio.ensure_future(loop.sock_sendall(sock, rest))
    tail = b""
    count = 0
    try:
        async with asyncio.timeout(GUARD * 4):
            while count < expected:
                data = await loop.sock_recv(sock, 1 << 20)
                if not data:
                    break
                data = tail + data
                count += data.count(STATUS_LINE)
                tail = data[-(len(STATUS_LINE) - 1):]
        await sender
    finally:
        sender.cancel()
    return count


async def _measure(push: Callable[[], Awaitable[int]]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        sent = await push()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return sent, after - before


# -- item 2: back-pressure ----------------------------------------------------------------------------------------------
async def test_pipelined_large_posts_behind_a_slow_request_keep_memory_flat(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate)
    post = http_request("POST", "/post", b"p" * MiB)
    payload = memoryview(http_request("GET", "/wait") + post * 100)
    sock = _socket(server.port)
    try:
        sent = await _push_until_stalled(sock, payload[:200])
        async with asyncio.timeout(GUARD):
            await gate.started.wait()
        sent, growth = await _measure(lambda: _push_until_stalled(sock, payload[200:]))
        assert sent < len(payload) - 200  # the server stopped reading
        assert growth < 4 * MiB, f"memory grew by {growth / MiB:.1f} MiB"
        gate.release.set()
        assert await _count_responses(sock, payload[200 + sent:], 101) == 101
    finally:
        sock.close()
    assert gate.handled == 101


async def test_pipelined_requests_a_client_does_not_read_keep_memory_flat(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate)
    payload = memoryview(http_request("GET", "/health") * 10_000)
    sock = _socket(server.port)
    try:
        sent, growth = await _measure(lambda: _push_until_stalled(sock, payload))
        assert growth < 4 * MiB, f"memory grew by {growth / MiB:.1f} MiB"
        assert gate.handled < 10_000  # the server stopped answering: nobody reads its answers
        assert await _count_responses(sock, payload[sent:], 10_000) == 10_000
    finally:
        sock.close()


async def test_large_answers_wait_for_a_slow_reader(serve: Serve) -> None:
    big = b"b" * (8 * MiB)
    answered = 0

    async def handler(req: Request) -> Response:
        nonlocal answered
        answered += 1
        return Response(200, big)

    async def push_and_settle() -> int:
        sent = await _push_until_stalled(sock, memoryview(http_request("GET", "/big") * 50))
        last = -1
        async with asyncio.timeout(GUARD * 4):
            while answered != last:  # until the server stops answering
                last = answered
                await asyncio.sleep(0.3)
        return sent

    server = await serve(handler)
    sock = _socket(server.port)
    try:
        _, growth = await _measure(push_and_settle)
        assert answered < 50
        assert growth < 4 * MiB + 2 * len(big), f"memory grew by {growth / MiB:.1f} MiB"  # one answer in flight
    finally:
        sock.close()


# -- item 11: the head limit applies to a head that arrives in one read --------------------------------------------
@pytest.mark.parametrize("pipelined", [False, True])
async def test_an_oversized_head_in_one_read_is_refused(serve: Serve, pipelined: bool) -> None:
    gate = Gate()
    server = await serve(gate)
    big = http_request("GET", "/big", headers={f"x-h{i}": "v" * 1000 for i in range(70)})
    assert MAX_HEAD_SIZE < len(big) < 80 * 1024
    async with await RawConnection.open(server.port) as conn:
        await conn.send((http_request("GET", "/first") if pipelined else b"") + big)
        if pipelined:
            assert (await conn.read_response()).status == 200
        response = await conn.read_response()
        assert response.status == 431
        assert await conn.at_eof()
    assert gate.handled == (1 if pipelined else 0)


async def test_a_head_of_many_small_headers_is_refused(serve: Serve) -> None:
    server = await serve(Gate())
    head = http_request("GET", "/", headers={f"x-{i}": "v" * 30 for i in range(3000)})
    async with await RawConnection.open(server.port) as conn:
        with contextlib.suppress(ConnectionError):
            await conn.send(head)
        assert (await conn.read_response()).status == 431


# -- item 10: 100-continue only for the request being answered -------------------------------------------------------
async def test_100_continue_is_not_written_into_the_previous_answer(serve: Serve) -> None:
    release = asyncio.Event()

    async def handler(req: Request) -> Response | StreamingResponse:
        if req.path == "/stream":
            async def chunks() -> AsyncIterator[bytes]:
                yield b"first "
                await release.wait()
                yield b"second"
            return StreamingResponse(chunks(), content_type="text/plain")
        return Response(200, orjson.dumps({"body": req.body.decode()}))

    server = await serve(handler)
    async with await RawConnection.open(server.port) as conn:
        await conn.send(http_request("GET", "/stream") + http_request(
            "POST", "/upload", headers={"Expect": "100-continue", "Content-Length": "5"}, content_length=False))
        head = await conn.read_head()
        assert head.status == 200
        assert await conn.read_chunk() == b"first "
        release.set()
        assert await conn.read_chunk() == b"second"
        assert await conn.read_chunk() is None  # the stream's body is intact: no 100 in it
        interim = await conn.read_head()
        assert interim.status == 100  # now that the upload is the request being answered
        await conn.send(b"hello")
        response = await conn.read_response()
        assert response.status == 200 and response.json == {"body": "hello"}


# -- item 5: deadlines for slow clients, and a connection limit --------------------------------------------------------
async def test_a_slow_head_gets_408_and_close(serve: Serve) -> None:
    server = await serve(Gate(), header_timeout=0.3)
    async with await RawConnection.open(server.port) as conn:
        async with asyncio.timeout(GUARD):
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ":
                try:
                    await conn.send(bytes([byte]))
                except ConnectionError:
                    break
                if conn.reader.at_eof() or len(conn.reader._buffer):  # type: ignore[attr-defined]
                    break  # the server answered already
                await asyncio.sleep(0.05)
        response = await conn.read_response()
        assert response.status == 408
        assert "head" in response.json["error"]["message"]
        assert await conn.at_eof()


async def test_a_slow_body_gets_408_and_close(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate, body_timeout=0.3, body_min_rate=1_000_000)
    async with await RawConnection.open(server.port) as conn:
        await conn.send(http_request("POST", "/post", headers={"Content-Length": "1000"}, content_length=False))
        async with asyncio.timeout(GUARD):
            while not conn.reader.at_eof() and not len(conn.reader._buffer):  # type: ignore[attr-defined]
                try:
                    await conn.send(b"x")
                except ConnectionError:
                    break
                await asyncio.sleep(0.05)
        response = await conn.read_response()
        assert response.status == 408
        assert await conn.at_eof()
    assert gate.handled == 0


async def test_a_body_slower_than_the_timeout_but_above_the_minimum_rate_is_accepted(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate, body_timeout=0.2, body_min_rate=1)
    async with await RawConnection.open(server.port) as conn:
        await conn.send(http_request("POST", "/post", headers={"Content-Length": "1000"}, content_length=False))
        for _ in range(10):  # 0.5 s at least, past the timeout; 1 B/s is kept unless 100 s pass between two sends
            await conn.send(b"x" * 100)
            await asyncio.sleep(0.05)
        response = await conn.read_response()
        assert response.status == 200 and response.json["size"] == 1000


async def test_the_connection_limit_refuses_new_connections_and_serves_the_others(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate, max_connections=2)
    async with await RawConnection.open(server.port) as one, await RawConnection.open(server.port) as two:
        await one.send(http_request("GET", "/a"))
        assert (await one.read_response()).status == 200
        await two.send(http_request("GET", "/b"))
        assert (await two.read_response()).status == 200
        async with await RawConnection.open(server.port) as three:
            refused = await three.read_response()
            assert refused.status == 503
            assert refused.headers.get("connection") == "close"
            assert await three.at_eof()
        for conn in (one, two):
            await conn.send(http_request("GET", "/again"))
            assert (await conn.read_response()).status == 200
    assert gate.handled == 4


# -- item 7: graceful shutdown -----------------------------------------------------------------------------------------
def _slow_stream(events: int, pause: float) -> Callable[[Request], Awaitable[StreamingResponse]]:
    async def handler(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(events):
                yield b"data: {\"n\": %d}\n\n" % i
                await asyncio.sleep(pause)
            yield b"data: [DONE]\n\n"
        return StreamingResponse(chunks())
    return handler


async def _stream_began(conn: RawConnection) -> asyncio.Future[list[bytes]]:
    """Once the answer's head arrived (the stream is under way, whatever the machine's load): its chunks, read to
    the terminating one in the background."""
    head = await conn.read_head()
    assert head.status == 200

    async def chunks() -> list[bytes]:
        read: list[bytes] = []
        async with asyncio.timeout(GUARD * 2):
            while (chunk := await conn.read_chunk()) is not None:
                read.append(chunk)
        return read

    return asyncio.ensure_future(chunks())


async def test_shutdown_lets_streams_finish_within_the_grace(serve: Serve) -> None:
    server = await serve(_slow_stream(6, 0.05))
    port = server.port
    async with await RawConnection.open(server.port) as conn, await RawConnection.open(server.port) as idle:
        await conn.send(http_request("GET", "/stream"))
        reading = await _stream_began(conn)
        await server.close(grace=GUARD)
        chunks = await reading
        assert chunks[-1] == b"data: [DONE]\n\n"
        assert len(chunks) == 7
        assert await conn.at_eof()
        assert await idle.at_eof()  # idle connections are closed at once
    with pytest.raises(OSError):
        await RawConnection.open(port)  # the listener closed


async def test_shutdown_past_the_grace_ends_streams_with_an_error_event_and_a_terminating_chunk(serve: Serve) -> None:
    server = await serve(_slow_stream(1000, 0.02))
    async with await RawConnection.open(server.port) as conn:
        await conn.send(http_request("GET", "/stream"))
        reading = await _stream_began(conn)
        await server.close(grace=0.2)
        chunks = await reading  # ends with the terminating chunk (else read_chunk would fail at EOF)
        last = orjson.loads(chunks[-1].removeprefix(b"data: "))
        assert last["error"]["code"] == "stream_interrupted"
        assert all(c.startswith(b"data: {\"n\": ") for c in chunks[:-1])  # whole events only
        assert await conn.at_eof()


# -- item 7 through the gateway: server.shutdown_grace -------------------------------------------------------------------
async def _gateway_stream(start_upstream: Any, start_gateway: Any, events: int, pause: float,
                          grace: float, path: str = "/v1/chat/completions") -> tuple[Any, RawConnection]:
    from support import chunk_event, config, deployment, model

    async def respond(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield chunk_event({"role": "assistant", "content": ""})
            for _ in range(events):
                yield chunk_event({"content": "word "})
                await asyncio.sleep(pause)
            yield chunk_event({}, "stop")
            yield b"data: [DONE]\n\n"
        return StreamingResponse(chunks())

    up = await start_upstream(respond)
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url)), shutdown_grace=grace))
    conn = await RawConnection.open(gateway.port)
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if path == "/v1/messages":
        body["max_tokens"] = 100
    await conn.send(http_request("POST", path, orjson.dumps(body), {"Content-Type": "application/json"}))
    return gateway, conn


async def test_gateway_shutdown_lets_a_stream_finish_within_server_shutdown_grace(start_upstream: Any,
                                                                                  start_gateway: Any) -> None:
    gateway, conn = await _gateway_stream(start_upstream, start_gateway, 8, 0.05, grace=GUARD)
    async with conn:
        reading = await _stream_began(conn)
        await gateway.close()
        chunks = await reading
        assert b"".join(chunks).endswith(b"data: [DONE]\n\n")
        assert await conn.at_eof()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_gateway_shutdown_past_the_grace_ends_a_stream_with_stream_interrupted(start_upstream: Any,
                                                                                     start_gateway: Any,
                                                                                     path: str) -> None:
    gateway, conn = await _gateway_stream(start_upstream, start_gateway, 1000, 0.02, grace=0.3, path=path)
    async with conn:
        reading = await _stream_began(conn)
        await gateway.close()
        chunks = await reading  # a terminating chunk came (else reading fails at EOF)
        body = b"".join(chunks)
        assert body.endswith(b"\n\n")  # whole events only
        last = body.rstrip(b"\n").rsplit(b"\n\n", 1)[-1]
        assert b"stream_interrupted" in last
        if path == "/v1/messages":
            assert last.startswith(b"event: error\ndata: ")
        else:
            assert orjson.loads(last.removeprefix(b"data: "))["error"]["code"] == "stream_interrupted"
        assert await conn.at_eof()
