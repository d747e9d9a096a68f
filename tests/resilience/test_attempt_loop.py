"""The attempt loop in virtual time: order, backoff, budgets, breakers, panic, bulkheads, deadlines, classes.

Nothing here sleeps: the router gets a virtual clock and sleep, and a fake
transport whose scripted behaviours move that clock (see resilience_support).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from resilience_support import (
    NO_BREAKER,
    NO_JITTER_BREAKER,
    CeilingRandom,
    FakeTransport,
    VirtualTime,
    fake_deployment,
    fake_model,
    hang,
    make_router,
    ok,
    refused,
    status,
    timeout,
)

from stellwerk import AllAttemptsFailedError, Router, UpstreamError
from stellwerk.errors import ContentPolicyError, ContextWindowExceededError
from support import GUARD

USER = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def transport(time: VirtualTime) -> FakeTransport:
    return FakeTransport(time)


@pytest.fixture
async def routers(time: VirtualTime, transport: FakeTransport) -> AsyncIterator[Any]:
    made: list[Router] = []

    def make(*models: dict[str, Any], rng: random.Random | None = None) -> Router:
        router = make_router(*models, time=time, transport=transport, rng=rng)
        made.append(router)
        return router

    yield make
    for router in made:
        await router.aclose()


async def chat(router: Router, **fields: Any) -> Any:
    return await router.chat(model=fields.pop("model", "chat"), messages=fields.pop("messages", USER), **fields)


def breaker_state(router: Router, dep: str, model: str = "chat") -> str:
    state: str = router.health()["models"][model]["deployments"][dep]["breaker"]["state"]
    return state


# -- order and backoff ---------------------------------------------------------------------------------------------
async def test_a_failure_moves_to_the_next_untried_deployment_at_once(routers: Any, transport: FakeTransport,
                                                                      time: VirtualTime) -> None:
    transport.script("a", status(503))
    transport.script("b", refused())
    router = routers(fake_model("chat", "a", "b", "c", retries=2))
    result = await chat(router)
    assert (result.deployment, result.attempts) == ("c", 3)
    assert transport.order() == ["a", "b", "c"]
    assert time.sleeps == []  # moving elsewhere needs no backoff


async def test_repeats_come_only_after_every_deployment_was_tried_and_back_off_by_the_formula(
        routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    transport.script("a", status(503))
    transport.script("b", status(500))
    router = routers(fake_model("chat", "a", "b", retries=3, backoff={"base": 0.1, "cap": 0.3}), rng=CeilingRandom())
    with pytest.raises(AllAttemptsFailedError) as failed:
        await chat(router)
    assert transport.order() == ["a", "b"] * 4
    # delay(n) = min(cap, base * 2 ** (n - 1)) at its ceiling: retries 1, 2, 3 of each deployment
    assert time.sleeps == pytest.approx([0.1, 0.1, 0.2, 0.2, 0.3, 0.3])
    assert failed.value.status == 502 and len(failed.value.attempts) == 8


async def test_backoff_is_full_jitter_drawn_from_the_injected_rng(routers: Any, transport: FakeTransport,
                                                                  time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", retries=4, backoff={"base": 0.5, "cap": 3}), rng=random.Random(42))
    with pytest.raises(AllAttemptsFailedError):
        await chat(router)
    twin = random.Random(42)
    assert time.sleeps == pytest.approx([twin.uniform(0, min(3, 0.5 * 2 ** (n - 1))) for n in (1, 2, 3, 4)])


async def test_a_short_retry_after_is_waited_for(routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    transport.script("a", status(429, headers={"retry-after": "2"}), ok())
    router = routers(fake_model("chat", "a", retries=1))
    result = await chat(router)
    assert result.attempts == 2
    assert time.sleeps == [2.0]  # at least Retry-After (the jitter ceiling is 0.1)


async def test_a_long_retry_after_moves_on_without_waiting(routers: Any, transport: FakeTransport,
                                                           time: VirtualTime) -> None:
    transport.script("a", status(429, headers={"retry-after": "30"}))
    router = routers(fake_model("chat", "a", "b", retries=3))
    result = await chat(router)
    assert result.deployment == "b" and transport.order() == ["a", "b"] and time.sleeps == []
    # alone, the deployment is not retried at all: the client gets the 429
    lonely = routers(fake_model("solo", "a", retries=3))
    with pytest.raises(AllAttemptsFailedError) as failed:
        await chat(lonely, model="solo")
    assert failed.value.status == 429 and len(failed.value.attempts) == 1 and time.sleeps == []


async def test_a_retry_after_beyond_max_retry_after_is_never_retried_early(routers: Any, transport: FakeTransport,
                                                                           time: VirtualTime) -> None:
    """backoff.py: "A longer requested wait is not honoured here: the outcome is then MOVE_ON"."""
    transport.script("a", status(429, headers={"retry-after": "5"}), ok())
    router = routers(fake_model("chat", "a", retries=1, backoff={"max_retry_after": 2}))
    with contextlib.suppress(AllAttemptsFailedError):
        await chat(router)
    # Either no retry at all (move on), or a retry no earlier than the upstream asked for.
    assert all(s >= 5 for s in time.sleeps), f"retried {time.sleeps} s after a 429 asking for 5 s"


# -- retry budget ---------------------------------------------------------------------------------------------------
async def test_the_retry_budget_bounds_attempts_when_everything_fails(routers: Any, transport: FakeTransport,
                                                                      time: VirtualTime) -> None:
    for dep in "abc":
        transport.script(dep, status(503))
    router = routers(fake_model("chat", "a", "b", "c", retries=3, breaker=NO_BREAKER, backoff={"base": 0, "cap": 0}))
    first_request_attempts = 0
    for i in range(100):
        time.advance(0.01)  # 100 requests within one budget window (10 s)
        with pytest.raises(AllAttemptsFailedError) as failed:
            await chat(router)
        assert failed.value.status == 502
        if i == 0:
            first_request_attempts = len(transport.calls)
    assert first_request_attempts == 12  # alone, a request may use all of 3 x (1 + 3) attempts
    # ratio 0.2 and a reserve of 1/s over 10 s: at most 100 + 0.2 * 100 + 10 attempts (plus, at most,
    # one free move to each deployment not yet known to fail), not 1200
    assert len(transport.calls) <= 100 * 1.2 + 10 + 2 + 1
    budget = router.health()["models"]["chat"]["retry_budget"]
    assert budget["retries_in_window"] <= budget["retries_allowed"] + 1


async def test_the_retry_budget_refills_as_the_window_slides(routers: Any, transport: FakeTransport,
                                                             time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", retries=1, retry_budget={"ratio": 0, "min_per_second": 0.5, "window": 4},
                                breaker=NO_BREAKER, backoff={"base": 0, "cap": 0}))
    for _ in range(6):
        with pytest.raises(AllAttemptsFailedError):
            await chat(router)
    assert len(transport.calls) == 6 + 2  # a reserve of 0.5/s x 4 s: two retries, then the budget is spent
    time.advance(5)
    with pytest.raises(AllAttemptsFailedError):
        await chat(router)
    assert len(transport.calls) == 8 + 2  # the window slid: a retry again


async def test_a_retry_budget_bounds_repeats_on_a_single_deployment(routers: Any, transport: FakeTransport,
                                                                    time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", retries=3, breaker=NO_BREAKER, backoff={"base": 0, "cap": 0}))
    for _ in range(100):
        time.advance(0.01)
        with pytest.raises(AllAttemptsFailedError):
            await chat(router)
    assert len(transport.calls) <= 100 * 1.2 + 10 + 1


# -- circuit breaker ------------------------------------------------------------------------------------------------
async def test_a_tripped_breaker_skips_the_deployment_without_an_attempt(routers: Any, transport: FakeTransport,
                                                                         time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", "b", retries=0, breaker=NO_JITTER_BREAKER))
    results = [await chat(router) for _ in range(10)]
    assert all(r.deployment == "b" for r in results)
    assert [r.attempts for r in results] == [2, 2, 2] + [1] * 7
    assert len(transport.to("a")) == 3
    assert breaker_state(router, "a") == "open"
    assert router.health()["models"]["chat"]["deployments"]["a"]["available"] is False


async def test_half_open_probe_gives_traffic_back_to_a_recovered_deployment(routers: Any, transport: FakeTransport,
                                                                            time: VirtualTime) -> None:
    transport.script("a", status(503), status(503), status(503), ok("a is back"))
    router = routers(fake_model("chat", "a", "b", retries=0, breaker=NO_JITTER_BREAKER))
    for _ in range(4):
        await chat(router)
    assert len(transport.to("a")) == 3 and breaker_state(router, "a") == "open"
    time.advance(5)  # open_time
    result = await chat(router)
    assert (result.deployment, result.text) == ("a", "a is back")
    assert breaker_state(router, "a") == "closed"
    assert [(await chat(router)).deployment for _ in range(3)] == ["a"] * 3


async def test_a_failed_probe_opens_the_breaker_again_for_longer(routers: Any, transport: FakeTransport,
                                                                 time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", "b", retries=0, breaker=NO_JITTER_BREAKER))
    for _ in range(3):
        await chat(router)
    time.advance(5)
    await chat(router)  # the probe fails
    assert len(transport.to("a")) == 4 and breaker_state(router, "a") == "open"
    time.advance(5)
    await chat(router)
    assert len(transport.to("a")) == 4  # second ejection: 10 s
    time.advance(5)
    await chat(router)
    assert len(transport.to("a")) == 5


async def test_half_open_lets_one_probe_through_at_a_time(routers: Any, transport: FakeTransport,
                                                          time: VirtualTime) -> None:
    release = asyncio.Event()
    transport.script("a", status(503), status(503), status(503), hang(release, then=ok("probe")))
    router = routers(fake_model("chat", "a", "b", retries=0, breaker=NO_JITTER_BREAKER))
    for _ in range(3):
        await chat(router)
    time.advance(5)
    transport.started["a"].clear()
    probe = asyncio.ensure_future(chat(router))
    await asyncio.wait_for(transport.started["a"].wait(), GUARD)
    others = [await chat(router) for _ in range(3)]
    assert [r.deployment for r in others] == ["b"] * 3
    assert len(transport.to("a")) == 4
    release.set()
    assert (await asyncio.wait_for(probe, GUARD)).deployment == "a"
    assert breaker_state(router, "a") == "closed"


async def test_panic_when_every_breaker_is_open_still_tries(routers: Any, transport: FakeTransport,
                                                            time: VirtualTime) -> None:
    transport.script("a", status(503))
    transport.script("b", status(503))
    router = routers(fake_model("chat", "a", "b", retries=0, breaker=NO_JITTER_BREAKER))
    for _ in range(3):
        with pytest.raises(AllAttemptsFailedError):
            await chat(router)
    assert breaker_state(router, "a") == breaker_state(router, "b") == "open"
    assert router.health()["models"]["chat"]["panic"] is True
    before = len(transport.calls)
    transport.script("b", ok("still here"))
    result = await chat(router)  # health is ignored rather than failing everything
    assert result.text == "still here" and len(transport.calls) == before + 2


async def test_without_panic_open_breakers_fail_fast_with_503(routers: Any, transport: FakeTransport,
                                                              time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", retries=0, breaker=NO_JITTER_BREAKER, panic_threshold=0))
    for _ in range(3):
        with pytest.raises(AllAttemptsFailedError):
            await chat(router)
    before = len(transport.calls)
    with pytest.raises(AllAttemptsFailedError) as failed:
        await chat(router)
    assert len(transport.calls) == before  # no upstream attempt
    assert failed.value.status == 503 and failed.value.attempts == []


async def test_panic_mode_still_answers_from_the_one_healthy_deployment(routers: Any, transport: FakeTransport,
                                                                        time: VirtualTime) -> None:
    """Two of three deployments dead: 1/3 healthy is below the default panic threshold (0.5).

    Panic mode must not mean "try the dead ones first on every request": then each
    request pays two failed attempts, the retry budget runs out, and requests fail
    although a healthy deployment is there.
    """
    transport.script("a", status(503))
    transport.script("b", status(503))
    router = routers(fake_model("chat", "a", "b", "c", retries=0, breaker=NO_JITTER_BREAKER))
    answered = 0
    for _ in range(60):
        time.advance(0.05)
        try:
            await chat(router)
            answered += 1
        except AllAttemptsFailedError:
            pass
    assert answered == 60, f"only {answered}/60 answered; upstream attempts to dead deployments: " \
                           f"{len(transport.to('a')) + len(transport.to('b'))}"


# -- bulkhead ---------------------------------------------------------------------------------------------------------
async def test_a_full_deployment_spills_to_the_next(routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    release = asyncio.Event()
    transport.script("a", hang(release, then=ok("slow a")))
    router = routers(fake_model("chat", fake_deployment("a", max_in_flight=1), "b"))
    first = asyncio.ensure_future(chat(router))
    await asyncio.wait_for(transport.started["a"].wait(), GUARD)
    second = await chat(router)
    assert second.deployment == "b" and second.attempts == 1
    assert len(transport.to("a")) == 1
    release.set()
    assert (await asyncio.wait_for(first, GUARD)).deployment == "a"
    assert router.health()["models"]["chat"]["deployments"]["a"]["in_flight"] == 0


async def test_when_every_deployment_is_full_the_answer_is_a_quick_503(routers: Any, transport: FakeTransport,
                                                                       time: VirtualTime) -> None:
    release = asyncio.Event()
    transport.script("a", hang(release))
    router = routers(fake_model("chat", fake_deployment("a", max_in_flight=1)))
    first = asyncio.ensure_future(chat(router))
    await asyncio.wait_for(transport.started["a"].wait(), GUARD)
    with pytest.raises(AllAttemptsFailedError) as failed:
        await chat(router)
    assert failed.value.status == 503 and len(transport.calls) == 1
    release.set()
    await asyncio.wait_for(first, GUARD)


# -- deadline ---------------------------------------------------------------------------------------------------------
async def test_the_deadline_stops_the_loop_and_shortens_the_last_attempt(routers: Any, transport: FakeTransport,
                                                                         time: VirtualTime) -> None:
    transport.script("a", timeout())
    router = routers(fake_model("chat", "a", timeout=4, deadline=10, retries=10, backoff={"base": 0, "cap": 0}))
    started = time()
    with pytest.raises(AllAttemptsFailedError) as failed:
        await chat(router)
    assert [c.timeout for c in transport.calls] == [4, 4, 2]
    assert time() - started == pytest.approx(10)
    assert failed.value.status == 504


async def test_a_request_timeout_lowers_the_deadline(routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    transport.script("a", timeout())
    router = routers(fake_model("chat", "a", timeout=4, deadline=10, retries=10, backoff={"base": 0, "cap": 0}))
    with pytest.raises(AllAttemptsFailedError):
        await chat(router, timeout=5)
    assert [c.timeout for c in transport.calls] == [4, 1]


async def test_a_backoff_that_would_cross_the_deadline_is_not_slept(routers: Any, transport: FakeTransport,
                                                                    time: VirtualTime) -> None:
    transport.script("a", status(429, headers={"retry-after": "9"}))
    router = routers(fake_model("chat", "a", deadline=5, retries=3))
    with pytest.raises(AllAttemptsFailedError):
        await chat(router)
    assert time.sleeps == [] and len(transport.calls) == 1


# -- outcome classes ------------------------------------------------------------------------------------------------
async def test_a_client_error_is_returned_at_once_and_never_counts_against_the_breaker(
        routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    transport.script("a", status(400, "temperature must be at most 2", error_code="invalid_value"))
    router = routers(fake_model("chat", "a", "b", breaker={**NO_JITTER_BREAKER, "consecutive_failures": 2}))
    for _ in range(5):
        with pytest.raises(UpstreamError) as failed:
            await chat(router)
        assert failed.value.status == 400
    assert transport.order() == ["a"] * 5  # never failed over
    health = router.health()["models"]["chat"]["deployments"]["a"]
    assert health["breaker"]["state"] == "closed" and health["breaker"]["consecutive_failures"] == 0
    assert health["failures"] == 0


async def test_context_too_long_skips_the_deployment_without_judging_it(routers: Any, transport: FakeTransport,
                                                                        time: VirtualTime) -> None:
    transport.script("a", status(400, "This model's maximum context length is 10 tokens",
                                 error_code="context_length_exceeded"))
    router = routers(fake_model("chat", "a", "b", breaker={**NO_JITTER_BREAKER, "consecutive_failures": 1}))
    assert (await chat(router)).deployment == "b"
    assert breaker_state(router, "a") == "closed"


async def test_context_too_long_everywhere_goes_to_the_context_window_fallbacks(
        routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    too_long = status(400, "maximum context length exceeded", error_code="context_length_exceeded")
    transport.script("a", too_long)
    transport.script("b", too_long)
    router = routers(fake_model("chat", "a", "b", context_window_fallbacks=["big"], fallbacks=["other"]),
                     fake_model("big", "z"), fake_model("other", "o"))
    result = await chat(router)
    assert result.deployment == "z" and transport.order() == ["a", "b", "z"]
    plain = routers(fake_model("plain", "a", "b"))
    with pytest.raises(ContextWindowExceededError) as failed:
        await chat(plain, model="plain")
    assert failed.value.status == 400 and failed.value.code == "context_length_exceeded"


LONG_PROMPT = [{"role": "user", "content": "word " * 400}]


async def test_a_configured_context_window_skips_without_an_attempt(routers: Any, transport: FakeTransport,
                                                                    time: VirtualTime) -> None:
    router = routers(fake_model("chat", fake_deployment("small", context_window=100), "b"))
    result = await chat(router, messages=LONG_PROMPT)
    assert result.deployment == "b" and transport.order() == ["b"]


async def test_a_prompt_no_configured_window_fits_goes_to_the_context_window_fallbacks(
        routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    router = routers(fake_model("chat", fake_deployment("s1", context_window=100),
                                fake_deployment("s2", context_window=200), context_window_fallbacks=["big"]),
                     fake_model("big", "z"))
    result = await chat(router, messages=LONG_PROMPT)
    assert result.deployment == "z" and transport.order() == ["z"]


async def test_a_prompt_no_configured_window_fits_is_a_400_context_error(routers: Any, transport: FakeTransport,
                                                                         time: VirtualTime) -> None:
    router = routers(fake_model("chat", fake_deployment("s1", context_window=100)))
    with pytest.raises(ContextWindowExceededError) as failed:
        await chat(router, messages=LONG_PROMPT)
    assert failed.value.status == 400 and transport.calls == []


async def test_max_tokens_is_counted_once_against_the_context_window(routers: Any, transport: FakeTransport,
                                                                     time: VirtualTime) -> None:
    """~10 prompt tokens + max_tokens 3000 fit a 5000-token window."""
    router = routers(fake_model("chat", fake_deployment("a", context_window=5000)))
    result = await chat(router, max_tokens=3000)
    assert result.deployment == "a"


async def test_a_content_policy_refusal_goes_to_the_content_policy_fallbacks(routers: Any, transport: FakeTransport,
                                                                             time: VirtualTime) -> None:
    transport.script("a", status(400, "flagged", error_code="content_policy_violation"))
    router = routers(fake_model("chat", "a", "b", content_policy_fallbacks=["lenient"], fallbacks=["other"],
                                breaker={**NO_JITTER_BREAKER, "consecutive_failures": 1}),
                     fake_model("lenient", "z"), fake_model("other", "o"))
    result = await chat(router)
    assert result.deployment == "z"
    assert transport.order() == ["a", "z"]  # a refusal ends the model: b would refuse too
    assert breaker_state(router, "a") == "closed"


async def test_a_content_policy_refusal_without_fallbacks_is_a_400(routers: Any, transport: FakeTransport,
                                                                   time: VirtualTime) -> None:
    transport.script("a", status(400, "flagged", error_code="content_policy_violation"))
    router = routers(fake_model("chat", "a", "b", fallbacks=["other"]), fake_model("other", "o"))
    with pytest.raises(ContentPolicyError) as failed:
        await chat(router)
    assert failed.value.status == 400 and failed.value.code == "content_policy_violation"
    assert transport.order() == ["a"]


async def test_an_unavailable_model_goes_to_its_fallbacks(routers: Any, transport: FakeTransport,
                                                          time: VirtualTime) -> None:
    transport.script("a", status(503))
    router = routers(fake_model("chat", "a", retries=0, fallbacks=["backup"]), fake_model("backup", "z"))
    result = await chat(router)
    assert result.deployment == "z" and result.model == "chat" and transport.order() == ["a", "z"]


# -- hedging ----------------------------------------------------------------------------------------------------------
HEDGE = {"delay": 0.01}


async def test_a_slow_attempt_gets_a_hedge_and_the_loser_is_cancelled(routers: Any, transport: FakeTransport,
                                                                      time: VirtualTime) -> None:
    transport.script("a", hang())
    router = routers(fake_model("chat", "a", "b", hedge=HEDGE))
    result = await asyncio.wait_for(chat(router), GUARD)
    assert result.deployment == "b" and result.attempts == 2
    [slow] = transport.to("a")
    assert slow.cancelled  # the transport saw the cancel
    assert router.health()["models"]["chat"]["retry_budget"]["retries_in_window"] == 1  # the hedge was paid for
    deps = router.health()["models"]["chat"]["deployments"]
    assert deps["a"]["in_flight"] == deps["b"]["in_flight"] == 0
    assert deps["a"]["breaker"]["state"] == "closed" and deps["a"]["failures"] == 0  # cancelled, not failed


async def test_a_streamed_hedge_wins_and_the_slow_stream_is_cancelled(routers: Any, transport: FakeTransport,
                                                                      time: VirtualTime) -> None:
    transport.script("a", hang())
    router = routers(fake_model("chat", "a", "b", hedge=HEDGE))
    stream = await asyncio.wait_for(router.chat_stream(model="chat", messages=USER), GUARD)
    text = "".join([c["choices"][0]["delta"].get("content") or "" async for c in stream if c.get("choices")])
    assert stream.deployment == "b" and text == "fine"
    assert transport.to("a")[0].cancelled


async def test_no_hedge_when_the_budget_is_spent(routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    release = asyncio.Event()
    transport.script("a", hang(release, then=ok("patient")))
    router = routers(fake_model("chat", "a", "b", hedge=HEDGE,
                                retry_budget={"ratio": 0, "min_per_second": 0}))
    pending = asyncio.ensure_future(chat(router))
    await asyncio.wait_for(transport.started["a"].wait(), GUARD)
    await asyncio.sleep(0.1)  # ten hedge delays
    assert transport.to("b") == []
    release.set()
    assert (await asyncio.wait_for(pending, GUARD)).text == "patient"


async def test_a_fast_answer_needs_no_hedge(routers: Any, transport: FakeTransport, time: VirtualTime) -> None:
    router = routers(fake_model("chat", "a", "b", hedge=HEDGE))
    for _ in range(5):
        assert (await chat(router)).deployment == "a"
    assert transport.order() == ["a"] * 5
