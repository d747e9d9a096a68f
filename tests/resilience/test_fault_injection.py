"""Fault injection through a running gateway against simulated providers, one failure kind at a time.

Each test puts concurrent load (JSON and streamed requests, the official SDK)
through the gateway while one deployment misbehaves, and asserts

- what the client saw: every request answered while a healthy deployment
  exists; a clear 429/502/503/504 when none does;
- how many upstream attempts were made (the sims' counters): no retry storm;
- that a recovered deployment gets traffic back (breaker half-open -> closed,
  or an active health check).

Waits are bounded by hang guards; no test asserts a duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import Outage, SimProvider
from support import (
    GUARD,
    USER,
    CaptureUpstream,
    RawConnection,
    VirtualTimeouts,
    closed_port_url,
    config,
    deployment,
    http_request,
    model,
    request,
)

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
MakeTransport = Callable[[dict[str, Callable[[], int]]], VirtualTimeouts]

FOREVER = (Outage(start=0, duration=3600),)
LONG_OPEN = {"open_time": 60, "max_open_time": 60}
"""Breakers that stay open for the whole test once tripped (attempt counts do not depend on timing)."""
SHORT_OPEN = {"open_time": 0.1, "max_open_time": 0.1, "jitter": 0}


@dataclass
class Answer:
    status: int
    deployment: str | None
    text: str = ""
    finish: str | None = None
    error: str = ""
    stream: bool = False

    @property
    def complete(self) -> bool:
        return self.status == 200 and not self.error and bool(self.text) and self.finish == "stop"


async def ask(gateway: Gateway, stream: bool, headers: dict[str, str] | None = None) -> Answer:
    """One chat request over raw HTTP; a stream must end in ``[DONE]`` (an error event is recorded)."""
    body = {"model": "chat", "messages": USER, **({"stream": True} if stream else {})}
    response = await request(gateway.port, "POST", "/v1/chat/completions", body, headers=headers)
    answer = Answer(response.status, response.headers.get("x-stellwerk-deployment"), stream=stream)
    if response.status != 200:
        answer.error = response.body.decode(errors="replace")
        return answer
    if not stream:
        choice = response.json["choices"][0]
        answer.text, answer.finish = choice["message"]["content"] or "", choice["finish_reason"]
        return answer
    events = [e.removeprefix(b"data: ") for e in response.body.split(b"\n\n") if e]
    if events[-1] != b"[DONE]":
        answer.error = events[-1].decode(errors="replace")
    for event in events[:-1]:
        data = orjson.loads(event)
        if "error" in data:
            answer.error = event.decode(errors="replace")
        for choice in data.get("choices") or ():
            answer.text += choice["delta"].get("content") or ""
            answer.finish = choice.get("finish_reason") or answer.finish
    return answer


async def drive(gateway: Gateway, n: int, concurrency: int, *, streams: str = "half") -> list[Answer]:
    """``n`` requests, ``concurrency`` at a time; ``streams``: ``half`` (every other one), ``all`` or ``none``."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> Answer:
        async with gate:
            return await ask(gateway, streams == "all" or (streams == "half" and i % 2 == 1))

    return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), GUARD * 4)


async def health(gateway: Gateway) -> dict[str, Any]:
    deployments: dict[str, Any] = (await request(gateway.port, "GET", "/admin/health")).json["models"]["chat"][
        "deployments"]
    return deployments


def attempts(*sims: SimProvider) -> int:
    return sum(s.stats.requests for s in sims)


def assert_all_complete(answers: list[Answer], by: str | None = None) -> None:
    failed = [a for a in answers if not a.complete]
    assert not failed, f"{len(failed)}/{len(answers)} not answered, e.g. {failed[0]}"
    if by is not None:
        assert {a.deployment for a in answers if not a.stream} <= {by}


async def wait_until(check: Callable[[], Awaitable[bool]], poll: float = 0.02) -> None:
    async with asyncio.timeout(GUARD):
        while not await check():
            await asyncio.sleep(poll)


# -- one deployment broken, one healthy: every request answered, bounded attempts ------------------------------------
N, C = 80, 16
RESERVE = {"min_per_second": 5}
"""A retry budget reserve of 50 per 10 s for the tests of one failure kind each: a burst of C failovers
must not run out of budget (that the default budget copes with such bursts is tested on its own, further down)."""


async def two(start_gateway: StartGateway, broken_url: str, healthy_url: str,
              transport: VirtualTimeouts | None = None, **fields: Any) -> Gateway:
    fields.setdefault("breaker", LONG_OPEN)
    fields.setdefault("retry_budget", RESERVE)
    return await start_gateway(config(model("chat", deployment("broken", broken_url),
                                            deployment("healthy", healthy_url), **fields)),
                               **({} if transport is None else {"transport": transport}))


class Waits:
    """A sim's ``sleep`` that counts the waits begun: while one lasts, the sim holds a request."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, seconds: float) -> None:
        self.count += 1
        await asyncio.sleep(seconds)


@pytest.mark.parametrize("mode", ["status", "refuse"])
async def test_outage(mode: str, start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(outages=(Outage(start=0, duration=3600, mode=mode),))  # type: ignore[arg-type]
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url)
    answers = await drive(gateway, N, C)
    assert_all_complete(answers, by="healthy")
    assert healthy.stats.requests == N
    assert broken.stats.requests <= 5 + C  # tripped after 5 failures; at most C were in flight then
    state = await health(gateway)
    assert state["broken"]["breaker"]["state"] == "open" and state["healthy"]["breaker"]["state"] == "closed"
    assert all(d["in_flight"] == 0 for d in state.values())


async def test_connection_refused(start_sim: StartSim, start_gateway: StartGateway) -> None:
    healthy = await start_sim()
    gateway = await two(start_gateway, closed_port_url(), healthy.base_url)
    answers = await drive(gateway, N, C)
    assert_all_complete(answers, by="healthy")
    assert healthy.stats.requests == N
    assert (await health(gateway))["broken"]["breaker"]["trips"] == 1


async def test_flapping(start_sim: StartSim, start_gateway: StartGateway) -> None:
    """Down, up, down, up...: every request answered in every phase, and each time the deployment
    comes back, its breaker (open 0.1 s) lets traffic back to it."""
    broken = await start_sim()
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, breaker=SHORT_OPEN)
    for _ in range(3):
        broken.update(outages=FOREVER)
        assert_all_complete(await drive(gateway, 40, C))
        broken.update(outages=[])

        async def served_by_broken() -> bool:
            return (await ask(gateway, stream=False)).deployment == "broken"

        await wait_until(served_by_broken)
        assert_all_complete(await drive(gateway, 40, C), by="broken")
    assert (await health(gateway))["broken"]["breaker"]["trips"] >= 3
    answered = broken.stats.ok + healthy.stats.ok  # each request answered once
    assert attempts(broken, healthy) <= answered * 1.2 + 50 + 1  # the retry budget (reserve 50)


async def test_429_storm_with_retry_after(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(rate_limit_rate=1.0, retry_after_s=1)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url)
    answers = await drive(gateway, N, C)
    assert_all_complete(answers, by="healthy")
    assert broken.stats.requests <= 5 + C and healthy.stats.requests == N


async def test_5xx_burst_then_recovery_through_half_open(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(error_rate=1.0, error_statuses=(500, 502, 503))
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, breaker=SHORT_OPEN)
    assert_all_complete(await drive(gateway, N, C))
    assert (await health(gateway))["broken"]["breaker"]["trips"] >= 1
    broken.update(error_rate=0.0)  # the burst is over

    async def served_by_broken() -> bool:
        return (await ask(gateway, stream=False)).deployment == "broken"

    await wait_until(served_by_broken)  # the half-open probe succeeded
    assert (await health(gateway))["broken"]["breaker"]["state"] == "closed"
    answers = await drive(gateway, 20, 5)
    assert_all_complete(answers, by="broken")


async def test_hangs(start_sim: StartSim, start_gateway: StartGateway, virtual_timeouts: MakeTransport) -> None:
    broken = await start_sim(hang_rate=1.0)
    healthy = await start_sim()
    transport = virtual_timeouts({broken.base_url: lambda: broken.stats.hang})  # the healthy one is never timed
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, transport, timeout=0.3)
    answers = await drive(gateway, 60, 12)
    assert_all_complete(answers, by="healthy")
    assert broken.stats.requests <= 5 + 12 and broken.stats.hang == broken.stats.requests
    assert set(transport.timeouts) == {0.3}
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())


async def test_slow_first_token(start_sim: StartSim, start_gateway: StartGateway,
                                virtual_timeouts: MakeTransport) -> None:
    waits = Waits()
    broken = await start_sim(latency_ms=3000, sleep=waits)
    healthy = await start_sim()
    transport = virtual_timeouts({broken.base_url: lambda: waits.count})  # 3 s is past 0.2 s, not past 10 s
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, transport, ttft_timeout=0.2, timeout=10)
    answers = await drive(gateway, 40, 10, streams="all")
    assert_all_complete(answers)
    assert {a.deployment for a in answers} == {"healthy"}
    assert broken.stats.requests <= 5 + 10
    assert set(transport.timeouts) == {0.2}  # the streams' time to first token, not the answers' timeout


async def test_mid_stream_cuts_are_resumed(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(drop_mid_stream_rate=1.0, output_tokens=24)
    healthy = await start_sim(output_tokens=24)
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, breaker={})
    answers = await drive(gateway, N, C)
    assert_all_complete(answers)
    assert attempts(broken, healthy) <= N * 1.2 + 10 + C + 1
    assert all(d["in_flight"] == 0 for d in (await health(gateway)).values())


async def test_a_deployment_cutting_every_stream_is_ejected(start_sim: StartSim, start_gateway: StartGateway) -> None:
    """Every stream it starts breaks off: its breaker must trip (5 failures in a row), not count
    each stream as one success (first chunk) plus one failure (the cut)."""
    broken = await start_sim(drop_mid_stream_rate=1.0, output_tokens=24)
    healthy = await start_sim(output_tokens=24)
    gateway = await two(start_gateway, broken.base_url, healthy.base_url,
                        breaker={**LONG_OPEN, "consecutive_failures": 5, "failure_rate": 0.9})
    for _ in range(12):
        assert (await ask(gateway, stream=True)).complete
    assert (await health(gateway))["broken"]["breaker"]["state"] == "open"
    assert broken.stats.requests <= 5


async def test_malformed_bodies(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(malformed_rate=1.0)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url)
    answers = await drive(gateway, N, C)
    assert_all_complete(answers)
    assert attempts(broken, healthy) <= N * 1.2 + 10 + C + 1


# -- the default retry budget must not refuse failovers to a healthy deployment -----------------------------------
async def test_a_sudden_outage_under_concurrent_load_fails_no_request(start_sim: StartSim, start_gateway: StartGateway) -> None:
    """20 requests in flight when the first deployment goes down: 20 failovers at once. They are not
    retries of a failing system (the other deployment is healthy), so no request may fail."""
    broken = await start_sim(outages=FOREVER)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, retry_budget={})
    answers = await drive(gateway, 100, 20)
    failed = [a for a in answers if not a.complete]
    assert not failed, f"{len(failed)}/100 failed with a healthy deployment available: {failed[0].error[:200]}"
    assert broken.stats.requests <= 5 + 20


async def test_a_sub_threshold_error_rate_does_not_fail_requests(start_sim: StartSim, start_gateway: StartGateway) -> None:
    """30 % 5xx on the first deployment: too few to trip the breaker (5 in a row, or 50 %); every one of
    those requests must still be failed over to the healthy deployment."""
    broken = await start_sim(error_rate=0.3, seed=3)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url, breaker={}, retry_budget={})
    answers = await drive(gateway, 200, 20, streams="none")
    failed = [a for a in answers if not a.complete]
    assert not failed, f"{len(failed)}/200 failed with a healthy deployment available: {failed[0].error[:300]}"


async def test_upstream_attempts_are_exactly_the_counted_ones(start_sim: StartSim,
                                                              start_gateway: StartGateway) -> None:
    """An upstream that worked on a request for 50 ms and then dropped the connection received it: the
    transport must not send it again behind the attempt loop's back (uncounted, unbudgeted, and a chat
    completion is not idempotent)."""
    sim = await start_sim(latency_ms=50)
    gateway = await start_gateway(config(model("chat", deployment("only", sim.base_url), retries=0)))
    assert (await ask(gateway, stream=False)).complete  # leaves a pooled keep-alive connection upstream
    sim.update(drop_mid_stream_rate=1.0)
    response = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    assert response.status == 502
    assert response.headers["x-stellwerk-attempts"] == "1"
    assert sim.stats.requests == 2, f"the upstream received {sim.stats.requests - 1} requests for 1 attempt"


# -- nothing healthy: a clear status, quickly, without a storm ----------------------------------------------------------
@pytest.mark.parametrize(("kind", "expected"), [("outage", 502), ("refused", 503), ("hang", 504), ("429", 429)])
async def test_when_nothing_is_healthy_the_client_gets_a_clear_status(
        kind: str, expected: int, start_sim: StartSim, start_gateway: StartGateway,
        virtual_timeouts: MakeTransport) -> None:
    profiles: dict[str, dict[str, Any]] = {"outage": {"outages": FOREVER}, "hang": {"hang_rate": 1.0},
                                           "429": {"rate_limit_rate": 1.0, "retry_after_s": 30}}
    profile = profiles.get(kind, {})
    sims = [await start_sim(**profile), await start_sim(**profile)]
    urls = [closed_port_url(), closed_port_url()] if kind == "refused" else [s.base_url for s in sims]
    # the hanging sims' requests time out once held; the error answers of the others are never timed out
    transport = virtual_timeouts({s.base_url: (lambda s=s: s.stats.hang) for s in sims} if kind == "hang" else {})
    gateway = await start_gateway(config(model("chat", deployment("a", urls[0]), deployment("b", urls[1]),
                                               timeout=0.2, breaker=LONG_OPEN)), transport=transport)
    answers = await drive(gateway, 30, 10)
    assert {a.status for a in answers} == {expected}, {a.status for a in answers}
    # bounded by the retry budget (20 % + a reserve of 10), not 30 x 2 deployments x (1 + retries); moving
    # on to the other deployment may be free until it is known to fail: once per request in flight (10)
    assert attempts(*sims) <= 30 * 1.2 + 10 + 10 + 1
    if kind == "429":
        raw = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        assert raw.status == 429 and raw.headers["retry-after"]


# -- recovery through active health checks --------------------------------------------------------------------------
async def test_a_health_check_gives_a_recovered_deployment_its_traffic_back(
        start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(outages=FOREVER)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url,
                        health_check={"interval": 0.2, "timeout": 1, "kind": "chat"})
    assert_all_complete(await drive(gateway, 20, 5), by="healthy")

    async def probed_dead() -> bool:
        state = (await health(gateway))["broken"]
        return state["probe"] is not None and state["probe"]["ok"] is False

    await wait_until(probed_dead)
    assert (await health(gateway))["broken"]["breaker"]["state"] == "open"
    broken.update(outages=[])

    async def closed_while_busy() -> bool:
        await ask(gateway, stream=False)  # real traffic on the healthy one meanwhile
        return bool((await health(gateway))["broken"]["breaker"]["state"] == "closed")

    await wait_until(closed_while_busy)  # the breaker was open for 60 s: only a probe can have closed it
    assert (await ask(gateway, stream=False)).deployment == "broken"
    assert gateway.router.prober.skipped >= 1  # the busy, healthy deployment was not probed every time


# -- admin view, deadline header, client disconnects ----------------------------------------------------------------
async def test_admin_health_shows_breakers_budgets_and_panic(start_sim: StartSim, start_gateway: StartGateway) -> None:
    broken = await start_sim(outages=FOREVER)
    healthy = await start_sim()
    gateway = await two(start_gateway, broken.base_url, healthy.base_url)
    await drive(gateway, 10, 1)
    chat = (await request(gateway.port, "GET", "/admin/health")).json["models"]["chat"]
    assert (chat["healthy"], chat["deployments_total"], chat["panic"]) == (1, 2, False)
    dead = chat["deployments"]["broken"]
    assert dead["available"] is False and dead["breaker"]["state"] == "open" and dead["breaker"]["trips"] == 1
    assert dead["failures"] == 5 and "overloaded" in dead["last_error"]
    assert chat["deployments"]["healthy"]["successes"] == 10  # 5 answers and 5 streams, each counted once
    assert chat["retry_budget"]["requests_in_window"] == 10


async def test_x_stellwerk_timeout_lowers_the_deadline(start_upstream: StartUpstream, start_gateway: StartGateway,
                                                       virtual_timeouts: MakeTransport) -> None:
    upstream = await start_upstream()
    upstream.respond = upstream.hang_forever
    transport = virtual_timeouts({upstream.base_url: lambda: upstream.count})  # its clock jumps by each timeout
    gateway = await start_gateway(config(model("chat", deployment("slow", upstream.base_url), timeout=30)),
                                  transport=transport, clock=transport.clock)
    response = await asyncio.wait_for(request(gateway.port, "POST", "/v1/chat/completions",
                                              {"model": "chat", "messages": USER},
                                              headers={"x-stellwerk-timeout": "0.3"}), GUARD)
    assert response.status == 504
    assert transport.timeouts == [pytest.approx(0.3)]  # the attempt had 0.3 s, not 30; the deadline ended the request
    assert response.headers["x-stellwerk-attempts"] == "1"  # (with 30 s, a retry would have followed)
    await asyncio.wait_for(upstream.cancelled.wait(), GUARD)  # the upstream request was given up
    bad = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER},
                        headers={"x-stellwerk-timeout": "soon"})
    assert bad.status == 400 and "x-stellwerk-timeout" in bad.json["error"]["message"]


async def test_a_client_disconnect_mid_stream_cancels_the_upstream_and_frees_the_slot(
        start_upstream: StartUpstream, start_gateway: StartGateway) -> None:
    upstream = await start_upstream()
    upstream.respond = upstream.stream_then_hang
    gateway = await start_gateway(config(model("chat", deployment("up", upstream.base_url, max_in_flight=1))))
    body = b'{"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "stream": true}'
    conn = await RawConnection.open(gateway.port)
    await conn.send(http_request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"}))
    head = await conn.read_head()
    assert head.status == 200
    received = b""
    while b"partial" not in received:
        received += await conn.read_chunk() or b""
    await asyncio.wait_for(upstream.started.wait(), GUARD)
    await conn.close()
    await asyncio.wait_for(upstream.cancelled.wait(), GUARD)

    async def released() -> bool:
        return bool((await health(gateway))["up"]["in_flight"] == 0)

    await wait_until(released)
    state = (await health(gateway))["up"]
    assert state["failures"] == 0 and state["breaker"]["consecutive_failures"] == 0  # not the deployment's fault


async def test_a_client_disconnect_while_waiting_cancels_the_upstream(start_upstream: StartUpstream,
                                                                      start_gateway: StartGateway) -> None:
    upstream = await start_upstream()
    upstream.respond = upstream.hang_forever
    gateway = await start_gateway(config(model("chat", deployment("up", upstream.base_url))))
    conn = await RawConnection.open(gateway.port)
    await conn.send(http_request("POST", "/v1/chat/completions", b'{"model": "chat", "messages": '
                                 b'[{"role": "user", "content": "Hi"}]}', {"Content-Type": "application/json"}))
    await asyncio.wait_for(upstream.started.wait(), GUARD)
    await conn.close()
    await asyncio.wait_for(upstream.cancelled.wait(), GUARD)

    async def released() -> bool:
        return bool((await health(gateway))["up"]["in_flight"] == 0)

    await wait_until(released)
    assert (await health(gateway))["up"]["breaker"]["consecutive_failures"] == 0
