"""Issue 9, item 9: a parameter nested deeper than the upstream request can be encoded is a 400 naming it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stellwerk.gateway import Gateway
from support import CaptureUpstream, config, deployment, model, request

StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(("path", "extra"), [
    ("/v1/chat/completions", b'"messages":[{"role":"user","content":"hi"}]'),
    ("/v1/chat/completions", b'"messages":[{"role":"user","content":"hi"}],"stream":true'),
    ("/v1/embeddings", b'"input":"hi"'),
])
async def test_a_300_deep_pass_through_parameter_is_a_400_naming_it(start_upstream: StartUpstream,
                                                                     start_gateway: StartGateway,
                                                                     path: str, extra: bytes) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    body = b'{"model":"chat",%s,"x_vendor_option":%s}' % (extra, _nested(300))
    response = await request(gateway.port, "POST", path, body, {"Content-Type": "application/json"})
    assert response.status == 400
    error: dict[str, Any] = response.json["error"]
    assert error["param"] == "x_vendor_option"
    assert "x_vendor_option" in error["message"] and "nested" in error["message"]
    assert up.count == 0


async def test_a_deep_tool_schema_on_the_anthropic_front_door_is_a_400_in_its_shape(
        start_upstream: StartUpstream, start_gateway: StartGateway) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    schema = b'{"type":"object","properties":{"a":%s}}' % _nested(300)
    body = (b'{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"hi"}],'
            b'"tools":[{"name":"t","input_schema":%s}]}' % schema)
    response = await request(gateway.port, "POST", "/v1/messages", body, {"Content-Type": "application/json"})
    assert response.status == 400
    assert response.json["type"] == "error"
    assert "tools" in response.json["error"]["message"]


async def test_moderate_nesting_still_passes_through(start_upstream: StartUpstream,
                                                     start_gateway: StartGateway) -> None:
    up = await start_upstream()
    gateway = await start_gateway(config(model("chat", deployment("a", up.base_url))))
    body = b'{"model":"chat","messages":[{"role":"user","content":"hi"}],"x_vendor_option":%s}' % _nested(100)
    response = await request(gateway.port, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert response.status == 200
    assert up.count == 1
