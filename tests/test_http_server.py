"""The HTTP/1.1 server on its own: keep-alive, pipelining, body limits, 100-continue, errors, disconnects, streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from support import GUARD, RawConnection, http_request

Serve = Callable[..., Awaitable[HTTPServer]]


class Echo:
    """A handler that records requests and echoes what it saw as JSON."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    async def __call__(self, req: Request) -> Response:
        self.requests.append(req)
        delay = float(req.headers.get("x-delay", "0"))
        if delay:
            await asyncio.sleep(delay)
        return Response(200, orjson.dumps({
            "method": req.method, "path": req.path, "query": req.query, "body": req.body.decode("latin-1"),
            "client": req.client, "version": req.http_version, "headers": req.headers,
        }), [("x-seen", req.path)])


async def open_conn(server: HTTPServer) -> RawConnection:
    return await RawConnection.open(server.port)


async def test_request_parsing_and_response_framing(serve: Serve) -> None:
    echo = Echo()
    server = await serve(echo)
    async with await open_conn(server) as conn:
        await conn.send(b"POST /v1/x?a=1&b=2 HTTP/1.1\r\nHost: h\r\nX-Multi: one\r\nx-multi: two\r\n"
                        b"Content-Length: 5\r\n\r\nhello")
        response = await conn.read_response()
    assert response.status == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-seen"] == "/v1/x"
    assert "connection" not in response.headers  # keep-alive is the HTTP/1.1 default
    seen = response.json
    assert (seen["method"], seen["path"], seen["query"], seen["body"]) == ("POST", "/v1/x", "a=1&b=2", "hello")
    assert seen["headers"]["x-multi"] == "one, two"
    assert seen["headers"]["host"] == "h"
    assert seen["version"] == "1.1"


async def test_keep_alive_reuses_the_connection(serve: Serve) -> None:
    echo = Echo()
    server = await serve(echo)
    async with await open_conn(server) as conn:
        for i in range(3):
            await conn.send(http_request("GET", f"/r{i}"))
            assert (await conn.read_response()).json["path"] == f"/r{i}"
    assert len({r.client for r in echo.requests}) == 1  # one client address:port, so one connection


async def test_pipelined_requests_are_answered_in_order(serve: Serve) -> None:
    echo = Echo()
    server = await serve(echo)
    async with await open_conn(server) as conn:
        # The first is the slowest: answers must still come back in request order.
        await conn.send(b"".join(http_request("POST", f"/p{i}", f"body{i}".encode(), {"x-delay": str(delay)})
                                 for i, delay in enumerate([0.05, 0.0, 0.02, 0.0])))
        answers = [(await conn.read_response()).json for _ in range(4)]
    assert [a["path"] for a in answers] == ["/p0", "/p1", "/p2", "/p3"]
    assert [a["body"] for a in answers] == ["body0", "body1", "body2", "body3"]


async def test_connection_close_is_honoured(serve: Serve) -> None:
    server = await serve(Echo())
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/", headers={"Connection": "close"}))
        response = await conn.read_response()
        assert response.headers["connection"] == "close"
        assert await conn.at_eof()


async def test_http_1_0_closes_unless_keep_alive(serve: Serve) -> None:
    server = await serve(Echo())
    async with await open_conn(server) as conn:
        await conn.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = await conn.read_response()
        assert response.status == 200 and response.json["version"] == "1.0"
        assert response.headers["connection"] == "close"
        assert await conn.at_eof()
    async with await open_conn(server) as conn:
        await conn.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert (await conn.read_response()).status == 200
        await conn.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert (await conn.read_response()).json["path"] == "/b"


async def test_chunked_request_body(serve: Serve) -> None:
    server = await serve(Echo())
    async with await open_conn(server) as conn:
        await conn.send(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n")
        assert (await conn.read_response()).json["body"] == "hello world"


async def test_expect_100_continue(serve: Serve) -> None:
    server = await serve(Echo())
    async with await open_conn(server) as conn:
        await conn.send(b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        interim = await conn.read_response()
        assert interim.status == 100
        await conn.send(b"data")
        final = await conn.read_response()
        assert final.status == 200 and final.json["body"] == "data"


# -- limits and malformed requests ----------------------------------------------------------------------------------
async def test_content_length_over_limit_is_rejected_before_the_body(serve: Serve) -> None:
    echo = Echo()
    server = await serve(echo, max_body_size=1024)
    async with await open_conn(server) as conn:
        # Announce 10 MB, send 10 bytes: the 413 must come without waiting for the rest.
        await conn.send(b"POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n0123456789")
        response = await conn.read_response()
        assert response.status == 413
        assert response.headers["connection"] == "close"
        assert "10000000" in response.json["error"]["message"]
        assert await conn.at_eof()
    assert echo.requests == []


async def test_expect_100_continue_over_limit_gets_413_and_no_100(serve: Serve) -> None:
    server = await serve(Echo(), max_body_size=1024)
    async with await open_conn(server) as conn:
        await conn.send(b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        assert (await conn.read_response()).status == 413


async def test_chunked_body_over_limit_is_rejected(serve: Serve) -> None:
    echo = Echo()
    server = await serve(echo, max_body_size=1024)
    async with await open_conn(server) as conn:
        await conn.send(b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            await conn.send(b"200\r\n" + b"x" * 512 + b"\r\n")  # 1536 bytes > 1024; never terminated
        response = await conn.read_response()
        assert response.status == 413
        assert await conn.at_eof()
    assert echo.requests == []


async def test_body_at_the_limit_is_accepted(serve: Serve) -> None:
    server = await serve(Echo(), max_body_size=1024)
    async with await open_conn(server) as conn:
        await conn.send(http_request("POST", "/ok", b"y" * 1024))
        assert len((await conn.read_response()).json["body"]) == 1024


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost h\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello on the plain port
])
async def test_malformed_requests_get_400_and_close(serve: Serve, raw: bytes) -> None:
    echo = Echo()
    server = await serve(echo)
    async with await open_conn(server) as conn:
        await conn.send(raw)
        response = await conn.read_response()
        assert response.status == 400
        assert response.json["error"]["type"] == "invalid_request_error"
        assert await conn.at_eof()
    assert echo.requests == []


async def test_good_request_then_garbage_answers_both_in_order(serve: Serve) -> None:
    """A valid pipelined request is answered before the 400 for the malformed one that follows it."""
    server = await serve(Echo())
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/fine", headers={"x-delay": "0.02"}) + b"NOT HTTP AT ALL\r\n\r\n")
        first = await conn.read_response()
        assert first.status == 200 and first.json["path"] == "/fine"
        assert (await conn.read_response()).status == 400
        assert await conn.at_eof()


async def test_oversized_request_head_is_rejected(serve: Serve) -> None:
    """Headers are not bounded by ``max_body_size``; a huge head must still be refused, not buffered forever."""
    echo = Echo()
    server = await serve(echo, max_body_size=1024)
    async with await open_conn(server) as conn:
        await conn.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * (1 << 20))
        try:
            async with asyncio.timeout(GUARD):  # buffering, it would answer 408 after the 10 s header timeout
                response = await conn.read_response()
        except TimeoutError:
            pytest.fail("the server kept buffering a 1 MiB request head instead of rejecting it")
        assert response.status in (400, 413, 431)
    assert echo.requests == []


async def test_handler_error_is_a_500_and_the_connection_survives(serve: Serve) -> None:
    async def handler(req: Request) -> Response:
        if req.path == "/boom":
            raise RuntimeError("handler bug")
        return Response(200, b"{}")

    server = await serve(handler)
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/boom"))
        response = await conn.read_response()
        assert response.status == 500
        assert response.json["error"]["type"] == "server_error"
        assert "handler bug" not in response.body.decode()
        await conn.send(http_request("GET", "/ok"))
        assert (await conn.read_response()).status == 200


# -- disconnects, streams, back-pressure -------------------------------------------------------------------------------
async def test_client_disconnect_cancels_the_handler(serve: Serve) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def handler(req: Request) -> Response:
        started.set()
        try:
            await asyncio.sleep(GUARD * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)  # pragma: no cover

    server = await serve(handler)
    conn = await open_conn(server)
    await conn.send(http_request("GET", "/slow"))
    async with asyncio.timeout(GUARD):
        await started.wait()
    await conn.close()
    async with asyncio.timeout(GUARD):
        await cancelled.wait()


async def test_streaming_response_is_chunked_and_keeps_alive(serve: Serve) -> None:
    async def handler(req: Request) -> Response | StreamingResponse:
        if req.path == "/after":
            return Response(200, b'{"after": true}')

        async def chunks() -> AsyncIterator[bytes]:
            for word in (b"data: one\n\n", b"", b"data: two\n\n"):
                yield word
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), headers=[("x-kind", "sse")])

    server = await serve(handler)
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/stream"))
        head = await conn.read_head()
        assert head.headers["transfer-encoding"] == "chunked"
        assert head.headers["content-type"] == "text/event-stream"
        assert head.headers["cache-control"] == "no-cache"
        assert head.headers["x-kind"] == "sse"
        assert await conn.read_chunk() == b"data: one\n\n"
        assert await conn.read_chunk() == b"data: two\n\n"  # the empty chunk was skipped, not a terminator
        assert await conn.read_chunk() is None
        await conn.send(http_request("GET", "/after"))
        assert (await conn.read_response()).json == {"after": True}


async def test_stream_producer_failure_closes_without_terminating_chunk(serve: Serve) -> None:
    async def handler(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("producer broke")

        return StreamingResponse(chunks())

    server = await serve(handler)
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/s"))
        await conn.read_head()
        assert await conn.read_chunk() == b"partial"
        with pytest.raises(asyncio.IncompleteReadError):
            await conn.read_chunk()


async def test_client_disconnect_mid_stream_finalizes_the_producer(serve: Serve) -> None:
    sent_first, finalized = asyncio.Event(), asyncio.Event()

    async def handler(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"first"
                sent_first.set()
                await asyncio.sleep(GUARD * 10)
                yield b"never"
            finally:
                finalized.set()

        return StreamingResponse(chunks())

    server = await serve(handler)
    conn = await open_conn(server)
    await conn.send(http_request("GET", "/s"))
    await conn.read_head()
    assert await conn.read_chunk() == b"first"
    await conn.close()
    async with asyncio.timeout(GUARD):
        await finalized.wait()


async def test_back_pressure_pauses_a_stream_to_a_slow_reader(serve: Serve) -> None:
    piece = b"z" * 65536
    total = 400  # 25 MiB: more than socket buffers on loopback can hold
    produced = 0

    async def handler(req: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            nonlocal produced
            for _ in range(total):
                produced += 1
                yield piece

        return StreamingResponse(chunks())

    server = await serve(handler)
    async with await open_conn(server) as conn:
        await conn.send(http_request("GET", "/big"))
        # Do not read; wait until production stalls (or finishes, which would be a failure).
        last = -1
        async with asyncio.timeout(GUARD):
            while produced == 0 or (produced != last and produced < total):
                last = produced
                await asyncio.sleep(0.05)
        assert produced < total, "the producer was never paused by a client that does not read"
        await conn.read_head()
        received = 0
        while (chunk := await conn.read_chunk()) is not None:
            received += len(chunk)
        assert received == total * len(piece)


class Gate:
    """A handler that answers ``/wait`` only once released (``started`` tells when it is in flight)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, req: Request) -> Response:
        if req.path == "/wait":
            self.started.set()
            await self.release.wait()
        return Response(200, orjson.dumps({"path": req.path}))


async def test_idle_keep_alive_connections_are_closed(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate, keepalive_timeout=30.0)
    async with await open_conn(server) as idle, await open_conn(server) as busy:
        await idle.send(http_request("GET", "/"))
        await idle.read_response()
        await busy.send(http_request("GET", "/wait"))
        async with asyncio.timeout(GUARD):
            await gate.started.wait()
        later = server.loop.time() + 60  # as if a minute went by
        for connection in list(server.connections):
            connection.sweep(later)
        assert await idle.at_eof()
        gate.release.set()
        assert (await busy.read_response()).status == 200  # in flight: not idle


async def test_close_lets_in_flight_requests_finish(serve: Serve) -> None:
    gate = Gate()
    server = await serve(gate)
    conn = await open_conn(server)
    try:
        await conn.send(http_request("GET", "/wait"))
        async with asyncio.timeout(GUARD):
            await gate.started.wait()
        closing = asyncio.create_task(server.close(grace=GUARD))
        await asyncio.sleep(0)
        gate.release.set()
        response = await conn.read_response()
        assert response.status == 200 and response.json["path"] == "/wait"
        await closing
        assert await conn.at_eof()
    finally:
        await conn.close()


@pytest.mark.parametrize("stream", [False, True])
async def test_headers_rendered_as_wire_text_follow_the_pairs(serve: Serve, stream: bool) -> None:
    head = "\r\nx-ratelimit-limit-requests: 10\r\nx-ratelimit-remaining-requests: 9"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"

    async def handler(req: Request) -> Response | StreamingResponse:
        if stream:
            return StreamingResponse(chunks(), headers=[("x-a", "1")], head=head)
        return Response(200, b"{}", [("x-a", "1")], head=head)

    server = await serve(handler)
    async with await open_conn(server) as conn:
        await conn.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        response = await conn.read_response()
    assert response.status == 200
    assert response.headers["x-a"] == "1"
    assert response.headers["x-ratelimit-limit-requests"] == "10"
    assert response.headers["x-ratelimit-remaining-requests"] == "9"


def test_header_pairs_read_the_rendered_head_back() -> None:
    from stellwerk.http.messages import encode_head, head_pairs

    head = "\r\nx-b: 2\r\nx-c: 3 s"
    assert head_pairs(head) == [("x-b", "2"), ("x-c", "3 s")] and head_pairs("") == []
    assert Response(200, b"", [("x-a", "1")], head=head).header_pairs() == [("x-a", "1"), ("x-b", "2"), ("x-c", "3 s")]
    assert bytes(encode_head(200, "text/plain", None, True, head)) == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-b: 2\r\nx-c: 3 s")
    assert bytes(encode_head(404, "application/json", [("x-a", "1")], False, head)) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nx-a: 1\r\nx-b: 2\r\nx-c: 3 s\r\n"
        b"connection: close")


async def test_header_names_are_remembered_within_a_bound(serve: Serve) -> None:
    from stellwerk.http import messages as names_module

    echo = Echo()
    server = await serve(echo)
    names = [b"X-Name-%d" % i for i in range(names_module._MAX_NAMES + 200)]
    async with await open_conn(server) as conn:
        for start in range(0, len(names), 400):  # the names of several requests, more than are remembered
            head = b"".join(b"%s: v%d\r\n" % (n, i) for i, n in enumerate(names[start:start + 400], start))
            await conn.send(b"GET /h HTTP/1.1\r\nHost: h\r\n" + head + b"\r\n")
            response = await conn.read_response()
            assert response.status == 200
    assert len(names_module._NAMES) <= names_module._MAX_NAMES
    seen = {k: v for request in echo.requests for k, v in request.headers.items()}
    assert all(seen[n.decode().lower()] == f"v{i}" for i, n in enumerate(names))


async def test_a_connection_reuses_the_text_of_headers_sent_again_and_reads_changed_ones(serve: Serve) -> None:
    """A keep-alive client's repeated header values arrive as the same text (decoded once, hash kept); a changed
    value, a repeated name, a long value and names beyond the remembered ones all arrive as sent."""
    from stellwerk.http import server as server_module

    echo = Echo()
    server = await serve(echo)
    long_value = b"L" * (server_module._SEEN_VALUE + 1)
    extra = b"".join(b"X-Extra-%d: e%d\r\n" % (i, i) for i in range(server_module._SEEN_NAMES + 8))
    async with await open_conn(server) as conn:
        for n in range(3):
            await conn.send(b"GET /h HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer sk-one\r\nX-Turn: %d\r\n"
                            b"X-Twice: a\r\nX-Twice: b%d\r\nX-Long: %s\r\n%s\r\n" % (n, n, long_value, extra))
            assert (await conn.read_response()).status == 200
    first, second, third = (request.headers for request in echo.requests)
    assert first["authorization"] == second["authorization"] == third["authorization"] == "Bearer sk-one"
    assert second["authorization"] is first["authorization"] and third["authorization"] is first["authorization"]
    assert [h["x-turn"] for h in (first, second, third)] == ["0", "1", "2"]
    assert [h["x-twice"] for h in (first, second, third)] == ["a, b0", "a, b1", "a, b2"]
    assert third["x-long"] == long_value.decode()
    assert all(third[f"x-extra-{i}"] == f"e{i}" for i in range(server_module._SEEN_NAMES + 8))
