"""Bad requests through a running gateway: OpenAI-shaped errors, right status, and the upstream never called."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import USER, RawConnection, config, deployment, http_request, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]

LIMIT = 1024


@pytest.fixture
async def setup(start_sim: StartSim, start_gateway: StartGateway) -> AsyncIterator[tuple[SimProvider, Gateway]]:
    """A gateway with a small body limit in front of a sim that must never be reached."""
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url)),
                                         model("embed", deployment("e", sim.base_url)), max_body_size=LIMIT))
    yield sim, gateway
    assert sim.stats.requests == 0, "a rejected request reached the upstream"


def assert_openai_error(body: Any, status_type: str = "invalid_request_error") -> dict[str, Any]:
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == status_type
    return error  # type: ignore[no-any-return]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": USER, **fields}


CHAT_400: list[tuple[bytes | Any, str | None]] = [
    (b"", None),
    (b"{not json", None),
    (b'{"model": "chat", "messages": [', None),
    (b"\xff\xfe", None),
    ([1, 2], None),
    ("a string", None),
    (None, None),
    ({"messages": USER}, "model"),
    (chat(model=7), "model"),
    ({"model": "chat"}, "messages"),
    (chat(messages="hi"), "messages"),
    (chat(messages=[]), "messages"),
    (chat(messages=[{"content": "x"}]), "messages[0].role"),
    (chat(messages=[{"role": "narrator", "content": "x"}]), "messages[0].role"),
    (chat(messages=[{"role": "user", "content": [{"type": "video", "url": "x"}]}]), "messages[0].content[0].type"),
    (chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), "messages[0].content[0].image_url"),
    (chat(messages=[{"role": "user", "content": [{"type": ["text"]}]}]), "messages[0].content[0].type"),
    (chat(tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
    (chat(tools="all"), "tools"),
    (chat(tool_choice=[]), "tool_choice"),
    (chat(response_format={"type": ["json_object"]}), "response_format.type"),
    (chat(temperature=9), "temperature"),
    (chat(temperature="warm"), "temperature"),
    (chat(max_tokens=True), "max_tokens"),
    (chat(n=1.5), "n"),
    (chat(stream_options={"include_usage": True}), "stream_options"),
    (chat(stream="true"), "stream"),
    (chat(stop=[1, 2]), "stop"),
]


@pytest.mark.parametrize(("body", "param"), CHAT_400)
async def test_invalid_chat_requests(setup: tuple[SimProvider, Gateway], body: Any, param: str | None) -> None:
    _, gateway = setup
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = await request(gateway.port, "POST", "/v1/chat/completions", raw,
                             {"Content-Type": "application/json", "x-request-id": "req-400"})
    assert response.status == 400, response.body
    error = assert_openai_error(response.json)
    assert error["param"] == param
    assert response.headers["x-request-id"] == "req-400"
    assert "x-stellwerk-deployment" not in response.headers


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "embed"}, "input"),
    ({"model": "embed", "input": []}, "input"),
    ({"model": "embed", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "embed", "input": "x", "dimensions": -1}, "dimensions"),
    ({"input": "x"}, "model"),
])
async def test_invalid_embeddings_requests(setup: tuple[SimProvider, Gateway], body: Any, param: str) -> None:
    _, gateway = setup
    response = await request(gateway.port, "POST", "/v1/embeddings", body)
    assert response.status == 400
    assert assert_openai_error(response.json)["param"] == param


async def test_unknown_model_is_404_naming_it(setup: tuple[SimProvider, Gateway]) -> None:
    _, gateway = setup
    for path, body in (("/v1/chat/completions", chat(model="gpt-17")), ("/v1/embeddings", {"model": "gpt-17",
                                                                                           "input": "x"})):
        response = await request(gateway.port, "POST", path, body)
        assert response.status == 404
        error = assert_openai_error(response.json)
        assert "gpt-17" in error["message"]
        assert (error["code"], error["param"]) == ("model_not_found", "model")


async def test_sdk_raises_the_right_exceptions(setup: tuple[SimProvider, Gateway], make_client: MakeClient) -> None:
    _, gateway = setup
    client = make_client(gateway)
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="chat", messages=USER, temperature=3)
    assert bad.value.status_code == 400
    assert bad.value.param == "temperature"
    assert bad.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="chat", messages=[{"role": "oracle", "content": "x"}])  # type: ignore[misc,list-item]
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="no-such-model", messages=USER)
    assert "no-such-model" in missing.value.message
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        await client.embeddings.create(model="no-such-model", input="x")
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="embed", input=[])


# -- body size ---------------------------------------------------------------------------------------------------------
async def test_content_length_over_limit_is_413_before_the_body_is_read(setup: tuple[SimProvider, Gateway]) -> None:
    _, gateway = setup
    async with await RawConnection.open(gateway.port) as conn:
        # Announce far more than the limit, send only a few bytes, and wait for the answer: it must not wait for us.
        await conn.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 50000000\r\n\r\n{\"model\": ")
        response = await conn.read_response()
        assert response.status == 413
        error = assert_openai_error(response.json)
        assert error["code"] == "request_too_large"
        assert await conn.at_eof()


async def test_chunked_body_over_limit_is_413(setup: tuple[SimProvider, Gateway]) -> None:
    _, gateway = setup
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b'{"model": "chat", "messages": [' + b" " * 600
        await conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        await conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))  # over the limit, and never finished
        response = await conn.read_response()
        assert response.status == 413
        assert assert_openai_error(response.json)["code"] == "request_too_large"
        assert await conn.at_eof()


async def test_body_under_the_limit_in_chunks_is_served(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("a", sim.base_url)), max_body_size=LIMIT))
    async with await RawConnection.open(gateway.port) as conn:
        body = orjson.dumps(chat())
        await conn.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 10]), body[i:i + 10])
                                   for i in range(0, len(body), 10)) + b"0\r\n\r\n")
        assert (await conn.read_response()).status == 200
    assert sim.stats.ok == 1


# -- routes and HTTP ---------------------------------------------------------------------------------------------------
async def test_unknown_path_is_404(setup: tuple[SimProvider, Gateway]) -> None:
    _, gateway = setup
    response = await request(gateway.port, "POST", "/v1/assistants", chat())
    assert response.status == 404
    error = assert_openai_error(response.json)
    assert "/v1/assistants" in error["message"]
    assert "x-request-id" in response.headers


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/v1/chat/completions", "POST"),
    ("PUT", "/v1/embeddings", "POST"),
    ("POST", "/v1/models", "GET"),
    ("DELETE", "/healthz", "GET"),
])
async def test_wrong_method_is_405(setup: tuple[SimProvider, Gateway], method: str, path: str, allowed: str) -> None:
    _, gateway = setup
    response = await request(gateway.port, method, path)
    assert response.status == 405
    assert response.headers["allow"] == allowed
    assert assert_openai_error(response.json)["code"] == "method_not_allowed"


@pytest.mark.parametrize("raw", [
    b"BLAH\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/chat/completions HTTP/1.1\r\nBad Header\r\n\r\n",
])
async def test_malformed_http_is_400_and_closes(setup: tuple[SimProvider, Gateway], raw: bytes) -> None:
    _, gateway = setup
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(raw)
        response = await conn.read_response()
        assert response.status == 400
        assert assert_openai_error(response.json)["code"] == "bad_request"
        assert await conn.at_eof()


async def test_errors_keep_the_connection_alive(setup: tuple[SimProvider, Gateway]) -> None:
    _, gateway = setup
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("POST", "/v1/chat/completions", b"{bad"))
        assert (await conn.read_response()).status == 400
        await conn.send(http_request("GET", "/v1/models"))
        assert (await conn.read_response()).status == 200
