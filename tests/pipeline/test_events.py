"""Typed telemetry events: their order for one call, the events of failover, breakers, hedges, budgets and resumed
streams, subscription by kind, ``wants``, and listeners that raise. All in virtual time over the fake transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from resilience_support import NO_BREAKER, FakeTransport, VirtualTime, chunk, cut, fake_model, hang, ok, status, stream

from stellwerk import AllAttemptsFailedError, Event, Events, Router
from stellwerk.telemetry import (
    AttemptFinished,
    AttemptStarted,
    BreakerChanged,
    HedgeSent,
    RequestFinished,
    RequestStarted,
    RetryBudgetRefused,
    RouteDecided,
    StreamResumed,
)
from support import GUARD

USER = [{"role": "user", "content": "Hello there"}]
MakeRouter = Callable[..., Router]


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


async def test_one_plain_call_emits_its_events_in_order(fake_router: MakeRouter) -> None:
    events: list[Event] = []
    router = fake_router(fake_model("chat", "a", "b"), listeners=[events.append])
    result = await router.chat(model="chat", messages=USER, request_id="r1")
    assert kinds(events) == ["RequestStarted", "RouteDecided", "AttemptStarted", "AttemptFinished", "RequestFinished"]
    started, decided, attempt, attempted, done = events
    assert isinstance(started, RequestStarted) and (started.model, started.stream) == ("chat", False)
    assert isinstance(decided, RouteDecided) and decided.order == ("a", "b") and decided.strategy == "failover"
    assert isinstance(attempt, AttemptStarted) and (attempt.deployment, attempt.number) == ("a", 1)
    assert isinstance(attempted, AttemptFinished) and (attempted.deployment, attempted.outcome) == ("a", "ok")
    assert isinstance(done, RequestFinished) and (done.deployment, done.status) == ("a", 200)
    assert {getattr(e, "request_id", None) for e in events} == {result.request_id} == {"r1"}


async def test_failover_shows_the_failed_attempt_then_a_second_one(fake_router: MakeRouter,
                                                                   transport: FakeTransport) -> None:
    transport.script("a", status(503))
    events: list[Event] = []
    router = fake_router(fake_model("chat", "a", "b"), listeners=[events.append])
    await router.chat(model="chat", messages=USER)
    attempts = [(type(e).__name__, e.deployment, getattr(e, "outcome", None), getattr(e, "number", None))
                for e in events if isinstance(e, AttemptStarted | AttemptFinished)]
    assert attempts == [("AttemptStarted", "a", None, 1), ("AttemptFinished", "a", "retry_here", None),
                        ("AttemptStarted", "b", None, 2), ("AttemptFinished", "b", "ok", None)]
    [failed] = [e for e in events if isinstance(e, AttemptFinished) and e.deployment == "a"]
    assert failed.status == 503
    [done] = [e for e in events if isinstance(e, RequestFinished)]
    assert done.deployment == "b" and [a.deployment for a in done.attempts] == ["a"]


async def test_breaker_changes_are_emitted(fake_router: MakeRouter, transport: FakeTransport,
                                           vtime: VirtualTime) -> None:
    transport.script("a", status(503), ok())
    changes: list[Event] = []
    breaker = {"consecutive_failures": 1, "open_time": 5, "jitter": 0}
    router = fake_router(fake_model("chat", "a", "b", breaker=breaker))
    router.events.subscribe(changes.append, BreakerChanged)
    assert (await router.chat(model="chat", messages=USER)).deployment == "b"
    assert changes == [BreakerChanged(deployment="a", old="closed", new="open")]
    vtime.advance(5)
    assert (await router.chat(model="chat", messages=USER)).deployment == "a"
    assert [(e.old, e.new) for e in changes[1:]] == [("open", "half_open"), ("half_open", "closed")]  # type: ignore[attr-defined]


async def test_a_hedge_is_emitted(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", hang())
    events: list[Event] = []
    router = fake_router(fake_model("chat", "a", "b", hedge={"delay": 0.01}), listeners=[events.append])
    result = await asyncio.wait_for(router.chat(model="chat", messages=USER), GUARD)
    assert result.deployment == "b"
    [hedge] = [e for e in events if isinstance(e, HedgeSent)]
    assert (hedge.slow, hedge.hedge, hedge.delay) == ("a", "b", 0.01)
    outcomes = {e.deployment: e.outcome for e in events if isinstance(e, AttemptFinished)}
    assert outcomes == {"a": "cancelled", "b": "ok"}


async def test_a_refused_retry_is_emitted(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", status(503))
    events: list[Event] = []
    router = fake_router(fake_model("chat", "a", retries=2, breaker=NO_BREAKER,
                                    retry_budget={"ratio": 0, "min_per_second": 0}), listeners=[events.append])
    with pytest.raises(AllAttemptsFailedError):
        await router.chat(model="chat", messages=USER, request_id="r2")
    assert [e for e in events if isinstance(e, RetryBudgetRefused)] == [
        RetryBudgetRefused(request_id="r2", model="chat", deployment=None)]
    assert len(transport.calls) == 1


async def test_a_resumed_stream_is_emitted(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hello"}), cut()]))
    events: list[Event] = []
    router = fake_router(fake_model("chat", "a", "b"), listeners=[events.append])
    reply = await router.chat_stream(model="chat", messages=USER)
    text = "".join([c["choices"][0]["delta"].get("content") or "" async for c in reply if c.get("choices")])
    assert text.startswith("Hello") and reply.deployment == "b"
    [resumed] = [e for e in events if isinstance(e, StreamResumed)]
    assert (resumed.broken, resumed.resumed_on, resumed.chars) == ("a", "b", len("Hello"))
    assert kinds(events)[-1] == "RequestFinished" and kinds(events).count("RequestFinished") == 1


async def test_subscribing_to_a_kind_delivers_only_that_kind(fake_router: MakeRouter) -> None:
    router = fake_router(fake_model("chat", "a"))
    assert not router.events.wants(RouteDecided) and not router.events.wants(AttemptStarted)
    started: list[Event] = []
    router.events.subscribe(started.append, AttemptStarted)
    assert router.events.wants(AttemptStarted) and not router.events.wants(AttemptFinished)
    await router.chat(model="chat", messages=USER)
    assert kinds(started) == ["AttemptStarted"]


def test_wants_and_subscribe_on_their_own() -> None:
    events = Events()
    assert not any(events.wants(kind) for kind in (RequestStarted, RequestFinished, HedgeSent, BreakerChanged))
    got: list[Event] = []
    events.subscribe(got.append, HedgeSent, BreakerChanged)
    events.emit(BreakerChanged(deployment="a", old="closed", new="open"))
    events.emit(RequestStarted(request_id="r", operation="chat", model="m", stream=False))
    assert kinds(got) == ["BreakerChanged"] and events.wants(HedgeSent) and not events.wants(RequestStarted)
    everything: list[Event] = []
    Events([everything.append]).emit(RequestStarted(request_id="r", operation="chat", model="m", stream=False))
    assert kinds(everything) == ["RequestStarted"]
    with pytest.raises(TypeError):
        events.subscribe(got.append, Event)


async def test_a_listener_that_raises_is_logged_and_the_request_succeeds(fake_router: MakeRouter,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("listener trouble")

    after: list[Event] = []
    router = fake_router(fake_model("chat", "a"), listeners=[broken, after.append])
    with caplog.at_level(logging.ERROR, logger="stellwerk.events"):
        result = await router.chat(model="chat", messages=USER)
    assert result.text == "fine"
    assert kinds(after) == ["RequestStarted", "RouteDecided", "AttemptStarted", "AttemptFinished", "RequestFinished"]
    logged = [r for r in caplog.records if r.name == "stellwerk.events"]
    assert len(logged) == 5 and all(r.exc_info and r.exc_info[0] is RuntimeError for r in logged)
