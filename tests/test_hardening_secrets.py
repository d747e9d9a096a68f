"""Issue 9, item 3: a provider key echoed by an upstream never leaves the gateway, whole or in pieces.

The canary is not shaped like an API key (no ``sk-`` prefix), so only redaction of the deployment's own
secrets can hide it. The upstream echoes the ``authorization`` line in its errors, placed so that the key
straddles the 300-character cut of error excerpts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson
import pytest

from stellwerk.errors import StellwerkError
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response
from stellwerk.telemetry import Event
from support import GUARD, USER, CaptureUpstream, config, deployment, model, request

StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]
CANARY = "CanaryQ7w8E9r0T1y2U3i4O5p6A7s8D9"


def _pieces(text: str) -> list[str]:
    """Every 8-character piece of the canary found in ``text``."""
    return [CANARY[i:i + 8] for i in range(len(CANARY) - 7) if CANARY[i:i + 8] in text]


def _echo(json_body: bool) -> Callable[[Request], Awaitable[Response]]:
    async def respond(req: Request) -> Response:
        line = f"authorization: {req.headers.get('authorization', '')}"
        padding = "p" * (290 - len(" rejected authorization: Bearer "))  # the key straddles character 300
        text = f"{padding} rejected {line} (check your key)"
        if json_body:
            return Response(401, orjson.dumps({"error": {"message": text, "type": "invalid_request_error"}}))
        return Response(401, text.encode(), content_type="text/plain")
    return respond


@pytest.mark.parametrize("json_body", [True, False])
async def test_a_canary_key_appears_nowhere(start_upstream: StartUpstream, start_gateway: StartGateway,
                                            caplog: pytest.LogCaptureFixture, json_body: bool) -> None:
    caplog.set_level(logging.DEBUG)
    up = await start_upstream(_echo(json_body))
    dep = deployment("a", up.base_url, api_key="${CANARY_KEY}")
    gateway = await start_gateway(config(model("chat", dep, health_check={"interval": 0.05, "skip_if_busy": False})),
                                  env={"CANARY_KEY": CANARY})
    records: list[Event] = []
    gateway.router.events.subscribe(records.append)  # every event kind: none may carry the key
    async with asyncio.timeout(GUARD):
        while not any(r.path.endswith("/models") for r in up.requests):
            await asyncio.sleep(0.02)
        while gateway.router.health()["models"]["chat"]["deployments"]["a"]["probe"] is None:
            await asyncio.sleep(0.02)
    assert up.requests[0].headers["authorization"] == f"Bearer {CANARY}"  # the upstream did see it

    seen: list[str] = []
    health = await request(gateway.port, "GET", "/admin/health")
    seen.append(health.body.decode())
    assert "401" in seen[-1] or "rejected" in seen[-1]
    stats = await request(gateway.port, "GET", "/admin/stats")
    seen.append(stats.body.decode())
    answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert answer.status in (401, 502)  # auth refused: the next deployment would be tried, there is none
    seen.append(answer.body.decode())
    messages = await request(gateway.port, "POST", "/v1/messages",
                             {"model": "chat", "max_tokens": 5, "messages": USER})
    seen.append(messages.body.decode())
    try:
        await gateway.router.chat({"model": "chat", "messages": USER})
    except StellwerkError as err:
        seen += [str(err), repr(err), repr(err.args), err.message, repr(getattr(err, "body", None))]
    else:  # pragma: no cover
        raise AssertionError("expected an error")
    seen += [repr(r) for r in records]
    seen.append(caplog.text)
    seen += [str(r.args) for r in caplog.records]
    everything = "\n".join(seen)
    assert "[redacted]" in everything or not json_body  # (a plain-text excerpt may cut the marker short)
    assert CANARY not in everything
    assert _pieces(everything) == []


def test_redaction_happens_before_truncation() -> None:
    from stellwerk.providers import get_adapter
    from stellwerk.routing.send import classify

    adapter = get_adapter("openai")
    body = ("x" * 290 + f" Bearer {CANARY} " + "y" * 100).encode()
    err = classify(adapter, (CANARY,), 500, {}, body)
    assert _pieces(err.message) == []
    assert _pieces(str(err)) == []


def test_long_messages_are_bounded_after_redaction() -> None:
    from stellwerk.providers import get_adapter
    from stellwerk.redact import MESSAGE_LIMIT
    from stellwerk.routing.send import classify

    adapter = get_adapter("openai")
    body = orjson.dumps({"error": {"message": "z" * (MESSAGE_LIMIT - 5) + CANARY + "z" * 10_000}})
    err = classify(adapter, (CANARY,), 400, {}, body)
    assert len(err.message) <= MESSAGE_LIMIT
    assert _pieces(err.message) == []
    assert err.body is None or _pieces(err.body.decode()) == []


