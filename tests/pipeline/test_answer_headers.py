"""The headers of a proxied answer: the gateway's own, plus what middlewares add (theirs win on a clash)."""

from __future__ import annotations

import pytest

from stellwerk import Router
from stellwerk.gateway.errors import answer_headers
from stellwerk.pipeline import ChatResult, Operation
from stellwerk.usage import Usage

ROUTER = Router.from_dict({"models": [{"name": "chat", "deployments": [
    {"id": "a", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1"}]}]})
CALL = ROUTER.call(Operation.CHAT, {"model": "chat", "messages": [{"role": "user", "content": "hi"}]})


def reply(*headers: tuple[str, str]) -> ChatResult:
    return ChatResult(data={}, raw=b"{}", model="chat", deployment="a", attempts=1, usage=Usage(1, 1), cost=0.5,
                      latency=0.1, request_id=CALL.request_id, route="failover", headers=headers)


def test_middleware_headers_follow_the_gateway_s_own() -> None:
    names = [n for n, _ in answer_headers(reply(("x-ratelimit-limit-requests", "10")), CALL)]
    assert names == ["x-request-id", "x-stellwerk-deployment", "x-stellwerk-attempts", "x-stellwerk-route",
                     "x-stellwerk-config-version", "x-stellwerk-cost", "x-ratelimit-limit-requests"]


@pytest.mark.parametrize("name", [n for n, _ in answer_headers(reply(), CALL)])
def test_a_middleware_header_replaces_the_gateway_s_own_of_the_same_name(name: str) -> None:
    headers = answer_headers(reply(("x-stellwerk-cache", "hit"), (name, "mine")), CALL)
    assert [v for n, v in headers if n == name] == ["mine"]
    assert ("x-stellwerk-cache", "hit") in headers
