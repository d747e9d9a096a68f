"""Issue 9, item 8: a web page cannot reach the gateway (DNS rebinding, no-cors POSTs); CORS by allow-list."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from stellwerk.gateway import Gateway
from support import USER, CaptureUpstream, RawConnection, config, deployment, http_request, model

StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
CHAT = orjson.dumps({"model": "chat", "messages": USER})


async def _send(gateway: Gateway, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    async with await RawConnection.open(gateway.port) as conn:
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        await conn.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return await conn.read_response()


async def _gateway(start_upstream: StartUpstream, start_gateway: StartGateway, **server: Any) -> tuple[Any, Gateway]:
    up = await start_upstream()
    return up, await start_gateway(config(model("chat", deployment("a", up.base_url)), **server))


@pytest.mark.parametrize("path", ["/admin/health", "/v1/models"])
async def test_a_rebound_host_name_is_refused(start_upstream: StartUpstream, start_gateway: StartGateway,
                                              path: str) -> None:
    _, gateway = await _gateway(start_upstream, start_gateway)
    response = await _send(gateway, "GET", path, {"Host": f"evil.example:{gateway.port}"})
    assert response.status == 403
    assert "server.allowed_hosts" in response.json["error"]["message"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:4000", "localhost:4000", "LOCALHOST", "[::1]:4000",
                                  "10.1.2.3", "gateway.internal", "api.corp.example:443"])
async def test_own_addresses_and_allowed_hosts_are_accepted(start_upstream: StartUpstream,
                                                            start_gateway: StartGateway, host: str) -> None:
    _, gateway = await _gateway(start_upstream, start_gateway,
                                allowed_hosts=["gateway.internal", "*.corp.example"])
    response = await _send(gateway, "GET", "/admin/health", {"Host": host})
    assert response.status == 200


@pytest.mark.parametrize("kind", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                  "multipart/form-data; boundary=x"])
async def test_json_routes_sent_as_simple_content_types_are_refused(start_upstream: StartUpstream,
                                                                    start_gateway: StartGateway, kind: str) -> None:
    up, gateway = await _gateway(start_upstream, start_gateway)
    response = await _send(gateway, "POST", "/v1/chat/completions", {"Host": "127.0.0.1", "Content-Type": kind}, CHAT)
    assert response.status == 415
    assert up.count == 0
    anthropic = await _send(gateway, "POST", "/v1/messages", {"Host": "127.0.0.1", "Content-Type": kind}, CHAT)
    assert anthropic.status == 415 and anthropic.json["type"] == "error"


async def test_a_no_cors_post_from_a_foreign_origin_is_refused(start_upstream: StartUpstream,
                                                               start_gateway: StartGateway) -> None:
    up, gateway = await _gateway(start_upstream, start_gateway)
    response = await _send(gateway, "PUT", "/admin/deployments/a/weight",
                           {"Host": "127.0.0.1", "Origin": "https://evil.example"}, b'{"weight": 0}')
    assert response.status == 403
    response = await _send(gateway, "POST", "/v1/chat/completions",
                           {"Host": "127.0.0.1", "Origin": "https://evil.example"}, CHAT)
    assert response.status == 403
    assert up.count == 0
    preflight = await _send(gateway, "OPTIONS", "/v1/chat/completions",
                            {"Host": "127.0.0.1", "Origin": "https://evil.example",
                             "Access-Control-Request-Method": "POST"})
    assert preflight.status == 403
    assert "access-control-allow-origin" not in preflight.headers
    # The gateway's own page (the dashboard) is same-origin: scheme://Host exactly, and only that.
    for origin, status in (("http://127.0.0.1", 200), ("https://127.0.0.1", 200), ("http://127.0.0.1:1", 403),
                           ("http://127.0.0.1.evil.example", 403), ("null", 403), ("ftp://127.0.0.1", 403)):
        response = await _send(gateway, "PUT", "/admin/deployments/a/weight", {"Host": "127.0.0.1", "Origin": origin,
                                                                               "Content-Type": "application/json"},
                               b'{"weight": 2}')
        assert response.status == status, origin


async def test_configured_origins_get_cors_and_preflight_answers(start_upstream: StartUpstream,
                                                                 start_gateway: StartGateway) -> None:
    origin = "https://app.example.com"
    up, gateway = await _gateway(start_upstream, start_gateway, cors_origins=[origin])
    preflight = await _send(gateway, "OPTIONS", "/v1/chat/completions", {
        "Host": "127.0.0.1", "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    response = await _send(gateway, "POST", "/v1/chat/completions",
                           {"Host": "127.0.0.1", "Origin": origin, "Content-Type": "application/json"}, CHAT)
    assert response.status == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in response.headers["access-control-expose-headers"]
    assert up.count == 1


async def test_requests_without_origin_or_host_are_served(start_upstream: StartUpstream,
                                                          start_gateway: StartGateway) -> None:
    _, gateway = await _gateway(start_upstream, start_gateway)
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert (await conn.read_response()).status == 200
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("POST", "/v1/chat/completions", CHAT))  # no content-type: curl-like tools
        assert (await conn.read_response()).status == 200
