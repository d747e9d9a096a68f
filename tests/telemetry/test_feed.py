"""``GET /admin/events`` (server-sent events) and ``GET /admin/timeline`` without a browser."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from stellwerk.telemetry import BreakerChanged, RequestFinished
from stellwerk.telemetry.feed import BUCKET, LiveFeed
from stellwerk.usage import Usage
from support import GUARD, USER, RawConnection, config, deployment, http_request, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]


async def next_event(conn: RawConnection) -> tuple[str, dict[str, object]]:
    """The next SSE event (heartbeat comments skipped); one event per chunk, as the feed writes them."""
    while True:
        chunk = await conn.read_chunk()
        assert chunk is not None
        if chunk.startswith(b":"):
            continue
        kind, data = chunk.decode().strip().split("\n")
        return kind.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))


async def test_events_stream_requests_breakers_and_config(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("flaky", sim.base_url), deployment("up", sim.base_url),
                                               retries=0, breaker={"consecutive_failures": 1})))
    assert (await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})).status == 200
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("GET", "/admin/events"))
        head = await conn.read_head()
        assert head.status == 200 and head.headers["content-type"].startswith("text/event-stream")
        kind, hello = await next_event(conn)
        assert kind == "hello" and hello["version"] == 1
        recent = hello["recent"]
        assert isinstance(recent, list) and [e["type"] for e in recent] == ["request"]  # the one before we connected

        sim.update(error_rate=1.0)  # every deployment fails: a breaker opens, the request fails
        answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER},
                               headers={"x-request-id": "watched"})
        assert answer.status >= 500
        seen = [await next_event(conn) for _ in range(3)]
        breakers = [e for k, e in seen if k == "breaker"]
        assert {e["deployment"] for e in breakers} == {"flaky", "up"} and breakers[0]["new"] == "open"
        (finished,) = [e for k, e in seen if k == "request"]
        assert finished["request_id"] == "watched" and finished["deployment"] is None
        assert finished["failed"] == ["flaky", "up"] and finished["status"] == answer.status

        gateway.router.configuration.set_weight("up", 3)
        sim.update(error_rate=0.0)
        await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        kinds = []
        while "request" not in kinds:
            kind, event = await next_event(conn)
            kinds.append(kind)
            if kind == "config":
                assert event["version"] == 2
        assert "config" in kinds


async def test_gateway_close_ends_open_event_streams(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    async with await RawConnection.open(gateway.port) as conn:
        await conn.send(http_request("GET", "/admin/events"))
        await conn.read_head()
        await next_event(conn)
        async with asyncio.timeout(GUARD):  # at once: if the stream held on, waiting for the grace would fail here
            await gateway.close(grace=GUARD * 2)
        assert await conn.read_chunk() is None


def test_timeline_buckets_and_quantiles() -> None:
    now = [1000.0]
    table = type("T", (), {"version": 1})()
    feed = LiveFeed(lambda: table, wall_clock=lambda: now[0])  # type: ignore[arg-type,return-value]

    def finished(latency: float, status: int = 200) -> RequestFinished:
        return RequestFinished(request_id="r", operation="chat", model="m", deployment="d" if status == 200 else None,
                               status=status, attempts=(), latency=latency, ttft=None, stream=False, usage=Usage(),
                               cost=0.5)

    for i in range(100):
        feed(finished(i / 100))
    feed(finished(1.0, 503))
    feed(BreakerChanged(deployment="d", old="closed", new="open"))
    now[0] += BUCKET
    feed(finished(0.2))
    points = feed.timeline()["points"]
    assert len(points) == 2
    first = points[0]
    assert first["requests"] == 101 and first["rps"] == 101 / BUCKET
    assert first["error_rate"] == 1 / 101 and first["cost"] == 50.5
    assert first["p50"] == 0.5 and first["p99"] == 0.99
    assert [e["type"] for e in feed.recent()][-3:] == ["request", "breaker", "request"]
    now[0] += 16 * 60
    assert feed.timeline()["points"] == []  # older than 15 minutes
