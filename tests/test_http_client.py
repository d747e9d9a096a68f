"""The pooled HTTP/1.1 client against hand-written upstreams: pooling, retries, deadlines, framing, errors."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from stellwerk.http.client import ConnectError, HTTPClient, ProtocolError, ReadError, TimeoutError_
from stellwerk.http.connection import MAX_HEAD_SIZE, Connection, Exchange
from stellwerk.http.pool import Pool
from support import GUARD, closed_port_url

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class RawUpstream:
    """A TCP server running ``script(reader, writer, connection_index)`` for each connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed_by_client = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.connections
        self.connections += 1
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self.script(reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request (head + Content-Length body); ``b""`` when the client closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_client.set()
            return b""
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def wait_client_close(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()
        self.closed_by_client.set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1/x"

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()


Start = Callable[[Script], Awaitable[RawUpstream]]


@pytest.fixture
async def upstream() -> AsyncIterator[Start]:
    servers: list[RawUpstream] = []

    async def start(script: Script) -> RawUpstream:
        server = RawUpstream(script)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    c = HTTPClient()
    yield c
    await c.close()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra, len(body), body)


async def test_request_line_headers_and_body(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(ok(extra=b"X-Upstream: yes\r\n"))

    server = await upstream(script)
    response = await client.request("POST", server.url + "?api-version=1", [("Authorization", "Bearer k")], b"{}",
                                    timeout=GUARD)
    assert response.status == 200
    assert response.headers["x-upstream"] == "yes"  # header names lower-cased
    assert await response.read() == b'{"ok":true}'
    sent = server.requests[0]
    assert sent.startswith(b"POST /v1/x?api-version=1 HTTP/1.1\r\n")
    port = server.url.split(":")[2].split("/")[0]
    assert f"host: 127.0.0.1:{port}\r\n".encode() in sent
    assert b"content-length: 2\r\n" in sent and b"Authorization: Bearer k\r\n" in sent
    assert sent.endswith(b"\r\n\r\n{}")


async def test_pre_encoded_headers_and_large_body(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(ok())

    server = await upstream(script)
    body = b"b" * 200_000  # sent in two writes
    response = await client.request("POST", server.url, b"x-pre: encoded\r\n", body, timeout=GUARD)
    await response.read()
    assert b"x-pre: encoded\r\n" in server.requests[0]
    assert server.requests[0].endswith(body)


async def test_keep_alive_connection_is_reused(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while await server.read_request(reader):
            writer.write(ok())

    server = await upstream(script)
    for _ in range(3):
        response = await client.request("GET", server.url, [], timeout=GUARD)
        assert await response.read() == b'{"ok":true}'
    assert server.connections == 1
    assert len(server.requests) == 3


async def test_connection_close_response_is_not_reused(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(ok(extra=b"Connection: close\r\n"))

    server = await upstream(script)
    for _ in range(2):
        await (await client.request("GET", server.url, [], timeout=GUARD)).read()
    assert server.connections == 2


async def test_stale_pooled_connection_is_retried_once(upstream: Start, client: HTTPClient) -> None:
    """The peer closes an idle keep-alive connection just as the next request is sent on it."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await server.read_request(reader)
        if index == 0:
            writer.write(ok(b'{"n":1}'))
            await server.read_request(reader)  # the second request arrives...
            return  # ...and the connection is closed without a byte of answer
        writer.write(ok(b'{"n":2}'))

    server = await upstream(script)
    assert await (await client.request("GET", server.url, [], timeout=GUARD)).read() == b'{"n":1}'
    assert await (await client.request("GET", server.url, [], timeout=GUARD)).read() == b'{"n":2}'
    assert server.connections == 2


async def test_fresh_connection_closed_without_answer_is_not_retried(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)

    server = await upstream(script)
    with pytest.raises(ReadError):
        await client.request("POST", server.url, [], b"{}", timeout=GUARD)
    assert server.connections == 1


async def test_partial_answer_on_reused_connection_is_not_retried(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await server.read_request(reader)
        writer.write(ok())
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")  # then the connection closes

    server = await upstream(script)
    await (await client.request("GET", server.url, [], timeout=GUARD)).read()
    with pytest.raises(ReadError):
        await client.request("GET", server.url, [], timeout=GUARD)
    assert server.connections == 1  # bytes had arrived: the request may have been processed, no retry


async def test_timeout_waiting_for_headers_aborts_the_connection(upstream: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(ok())  # the first request opens the connection (connecting is not what is timed here)
        await server.read_request(reader)
        await server.wait_client_close(reader)

    server = await upstream(script)
    client = HTTPClient(keepalive_expiry=GUARD)  # the idle connection is still there however late the next request
    try:
        await (await client.request("POST", server.url, [], b"{}", timeout=GUARD)).read()
        with pytest.raises(TimeoutError_):
            await client.request("POST", server.url, [], b"{}", timeout=0.2)
        async with asyncio.timeout(GUARD):
            await server.closed_by_client.wait()  # the upstream sees the request abandoned
        assert server.connections == 1
    finally:
        await client.close()


async def test_read_timeout_on_the_body(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-a-bit")
        await server.wait_client_close(reader)

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    with pytest.raises(TimeoutError_):
        await response.read(timeout=0.2)
    async with asyncio.timeout(GUARD):
        await server.closed_by_client.wait()


async def test_stream_idle_timeout(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await server.wait_client_close(reader)

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    chunks = []
    with pytest.raises(TimeoutError_):
        async for chunk in response.iter_chunks(idle_timeout=0.2):
            chunks.append(chunk)
    assert chunks == [b"first"]


async def test_response_split_across_many_segments(upstream: Start, client: HTTPClient) -> None:
    body = b'{"text": "' + b"split " * 50 + b'"}'
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:100], body[100:])) + b"0\r\n\r\n"
    answers = [ok(body), b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        for answer in answers:
            await server.read_request(reader)
            for i in range(0, len(answer), 7):  # 7 bytes per TCP segment (TCP_NODELAY, drained each time)
                writer.write(answer[i:i + 7])
                await writer.drain()
                await asyncio.sleep(0)

    server = await upstream(script)
    for _ in answers:
        response = await client.request("GET", server.url, [], timeout=GUARD)
        assert await response.read(timeout=GUARD) == body
    assert server.connections == 1


async def test_chunked_body_streamed_in_chunks(upstream: Start, client: HTTPClient) -> None:
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
        await release.wait()
        writer.write(b"3\r\ntwo\r\n0\r\n\r\n")

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    chunks = response.iter_chunks(idle_timeout=GUARD)
    assert await anext(chunks) == b"one"  # delivered before the rest exists
    release.set()
    assert [c async for c in chunks] == [b"two"]


async def test_body_delimited_by_connection_close(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    assert await response.read(timeout=GUARD) == b"until the end"


async def test_upstream_closes_mid_body(upstream: Start, client: HTTPClient) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short")

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    with pytest.raises(ReadError):
        await response.read(timeout=GUARD)


@pytest.mark.parametrize("finished", [False, True], ids=["unread", "more-body-after-the-end"])
async def test_unread_response_close_aborts_and_next_request_uses_a_new_connection(
    upstream: Start, client: HTTPClient, finished: bool
) -> None:
    """Closed unread, or closed as finished while more body than the end follows: the connection goes."""
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int) -> None:
        await server.read_request(reader)
        if index == 0:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nmore\r\n")
            await release.wait()
            writer.write(b"4\r\nmore\r\n")  # not the end of the message
            await server.wait_client_close(reader)
        else:
            writer.write(ok())

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    if finished:
        assert await response.next_chunk(GUARD) == b"more"
    response.close(finished=finished)
    release.set()
    async with asyncio.timeout(GUARD):
        await server.closed_by_client.wait()
    await (await client.request("GET", server.url, [], timeout=GUARD)).read()
    assert server.connections == 2


async def test_a_finished_reader_lets_the_connection_wait_for_the_end_and_be_reused(
    upstream: Start, client: HTTPClient
) -> None:
    """A stream's last event came before the chunked body's last chunk: the connection is not thrown away."""
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\ndata: [DONE]\n\n\n\n\n\n\n\n\r\n")
        await release.wait()
        writer.write(b"0\r\n\r\n")
        await server.read_request(reader)
        writer.write(ok())

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    assert (await response.next_chunk(GUARD)).startswith(b"data: [DONE]")
    response.close(finished=True)
    release.set()
    async with asyncio.timeout(GUARD):
        while not any(pool.idle for pool in client._pools.values()):
            await asyncio.sleep(0.01)  # the end is on its way (bounded by GUARD)
    await (await client.request("GET", server.url, [], timeout=GUARD)).read()
    assert server.connections == 1


async def test_connect_refused() -> None:
    client = HTTPClient()
    try:
        with pytest.raises(ConnectError):
            await client.request("GET", closed_port_url(), [], timeout=GUARD)
    finally:
        await client.close()


async def test_unsupported_url(client: HTTPClient) -> None:
    with pytest.raises(ConnectError):
        await client.request("GET", "ftp://example.com/x", [], timeout=GUARD)


@pytest.mark.parametrize("answer", [
    b"this is not http at all\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n",
])
async def test_malformed_response_is_a_protocol_error(upstream: Start, client: HTTPClient, answer: bytes) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(answer)
        await server.wait_client_close(reader)

    server = await upstream(script)
    with pytest.raises(ProtocolError):
        response = await client.request("GET", server.url, [], timeout=GUARD)
        await response.read(timeout=GUARD)


async def test_protocol_error_is_not_overwritten_when_the_connection_drops(upstream: Start, client: HTTPClient) -> None:
    """A malformed body detected while nobody waits must still surface as ProtocolError, not ReadError."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"ZZZ\r\nxx\r\n")
        await server.wait_client_close(reader)

    server = await upstream(script)
    response = await client.request("GET", server.url, [], timeout=GUARD)
    async with asyncio.timeout(GUARD):
        await server.closed_by_client.wait()  # the bad chunk arrived and the client aborted, while nobody waited
    with pytest.raises(ProtocolError):
        await response.read(timeout=GUARD)


async def test_oversized_response_is_a_protocol_error(upstream: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
        for _ in range(5):
            writer.write(b"x" * 1000)
            await writer.drain()
        await server.wait_client_close(reader)

    server = await upstream(script)
    small = HTTPClient(max_response_size=2048)
    try:
        with pytest.raises(ProtocolError):  # from request() or read(), depending on how the bytes arrive
            response = await small.request("GET", server.url, [], timeout=GUARD)
            await response.read(timeout=GUARD)
    finally:
        await small.close()


async def test_idle_pool_limit(upstream: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while await server.read_request(reader):
            writer.write(ok())

    server = await upstream(script)
    limited = HTTPClient(max_idle_per_host=1)
    try:
        responses = await asyncio.gather(*(limited.request("GET", server.url, [], timeout=GUARD) for _ in range(3)))
        for response in responses:
            await response.read()
        assert server.connections == 3
        for _ in range(3):
            await (await limited.request("GET", server.url, [], timeout=GUARD)).read()
        assert server.connections == 3  # the one kept idle connection serves the sequential requests
    finally:
        await limited.close()


async def test_expired_idle_connection_is_not_reused(upstream: Start) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while await server.read_request(reader):
            writer.write(ok())

    server = await upstream(script)
    short = HTTPClient(keepalive_expiry=0.05)
    try:
        await (await short.request("GET", server.url, [], timeout=GUARD)).read()
        await asyncio.sleep(0.1)
        await (await short.request("GET", server.url, [], timeout=GUARD)).read()
        assert server.connections == 2
    finally:
        await short.close()


def _fed(pieces: list[bytes]) -> Exchange:
    """An exchange whose response came in ``pieces``, one read each, on a fresh connection (no socket)."""
    pool = Pool("127.0.0.1", 9, None, HTTPClient(), "127.0.0.1:9")
    conn = Connection(pool)
    ex = conn.exchange = Exchange()
    for piece in pieces:
        if not conn.closed:
            conn.data_received(piece)
    return ex


def _head(fields: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\n" + b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 90) for i in range(fields))
            + b"content-length: 2\r\n\r\nok")


@pytest.mark.parametrize("reads", [1, 2, 3, 7])
async def test_a_response_head_below_the_limit_passes_however_it_is_split(reads: int) -> None:
    head = _head(400)  # ~40 KB: a head that came in several reads used to be counted twice
    assert 32 * 1024 < len(head) < MAX_HEAD_SIZE
    step = len(head) // reads + 1
    ex = _fed([head[i:i + step] for i in range(0, len(head), step)])
    assert ex.error is None and ex.status == 200 and ex.complete and len(ex.headers) == 401


@pytest.mark.parametrize("reads", [1, 3])
async def test_a_response_head_above_the_limit_fails_however_it_is_split(reads: int) -> None:
    head = _head(700)
    assert len(head) > MAX_HEAD_SIZE
    step = len(head) // reads + 1
    ex = _fed([head[i:i + step] for i in range(0, len(head), step)])
    assert isinstance(ex.error, ProtocolError) and "headers exceed 65536 bytes" in str(ex.error)


async def test_the_operating_system_s_connect_timeout_is_not_reported_as_the_deadline() -> None:
    pool = Pool("127.0.0.1", 9, None, HTTPClient(), "127.0.0.1:9")

    async def timed_out(*args: object, **kwargs: object) -> None:
        raise TimeoutError(errno.ETIMEDOUT, "Connection timed out")

    pool.loop.create_connection = timed_out  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(ConnectError, match=r"cannot connect to 127\.0\.0\.1:9: Connection timed out$"):
            await pool.connect(None)
    finally:
        del pool.loop.create_connection
