"""Backoff, retry budget and circuit breaker, in virtual time."""

from __future__ import annotations

import random

import pytest

from stellwerk.resilience.backoff import Backoff, BackoffOptions
from stellwerk.resilience.breaker import BreakerOptions, BreakerState, CircuitBreaker
from stellwerk.resilience.budget import RetryBudget, RetryBudgetOptions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_full_jitter_within_the_exponential_ceiling() -> None:
    backoff = Backoff(BackoffOptions(base=0.1, cap=1.0), random.Random(1))
    for retry, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [backoff.delay(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range (full jitter)
        assert min(delays) < ceiling * 0.2


def test_backoff_honours_a_short_retry_after_only() -> None:
    backoff = Backoff(BackoffOptions(base=0.1, cap=1.0, max_retry_after=5), random.Random(1))
    assert backoff.delay(1, retry_after=2.0) >= 2.0
    assert backoff.delay(1, retry_after=30.0) <= 0.1  # too long to wait: the loop moves on instead


def test_retry_budget_allows_ratio_plus_reserve_and_refills_over_time() -> None:
    clock = Clock()
    budget = RetryBudget(RetryBudgetOptions(ratio=0.2, min_per_second=0.5, window=10), clock)
    for _ in range(100):
        budget.deposit()
    allowed = 0
    while budget.try_withdraw():
        allowed += 1
    assert allowed == 25  # 0.2 * 100 + 0.5 * 10
    clock.now += 11  # the window slides past everything
    assert budget.try_withdraw()
    assert budget.snapshot()["requests_in_window"] == 0


def test_retry_budget_bounds_attempts_when_everything_fails() -> None:
    """1000 requests over 10 s, each wanting 3 retries: total retries stay near 20% + reserve."""
    clock = Clock()
    budget = RetryBudget(RetryBudgetOptions(ratio=0.2, min_per_second=1, window=10), clock)
    retries = 0
    for i in range(1000):
        clock.now = 1000 + i * 0.01
        budget.deposit()
        for _ in range(3):
            if budget.try_withdraw():
                retries += 1
    assert retries <= 0.2 * 1000 + 1 * 10 + 1


def make_breaker(**options: float) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    opts = BreakerOptions(**{"consecutive_failures": 3, "open_time": 5, "max_open_time": 60, "jitter": 0, **options})
    return CircuitBreaker(opts, clock, random.Random(7)), clock


def test_breaker_trips_on_consecutive_failures_then_probes_one_at_a_time() -> None:
    breaker, clock = make_breaker()
    for _ in range(3):
        assert breaker.allow()
        breaker.record(False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow() and not breaker.available()
    clock.now += 5
    assert breaker.available()
    assert breaker.allow()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe at a time
    breaker.record(True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_breaker_open_time_grows_per_ejection_up_to_the_cap() -> None:
    breaker, clock = make_breaker(open_time=5, max_open_time=12)
    for _ in range(3):
        breaker.record(False)
    opened = []
    for _ in range(4):
        opened.append(breaker.open_until - clock.now)
        clock.now = breaker.open_until
        assert breaker.allow()
        breaker.record(False)  # the probe fails: open again, longer
    assert opened == [5, 10, 12, 12]


def test_breaker_jitter_spreads_open_times() -> None:
    clock = Clock()
    times = set()
    for seed in range(20):
        breaker = CircuitBreaker(BreakerOptions(consecutive_failures=1, open_time=10, jitter=0.2), clock,
                                 random.Random(seed))
        breaker.record(False)
        times.add(round(breaker.open_until - clock.now, 3))
    assert len(times) > 10 and all(8 <= t <= 12 for t in times)


def test_breaker_trips_on_failure_rate_over_the_window() -> None:
    breaker, clock = make_breaker(consecutive_failures=100, failure_rate=0.5, min_requests=10, window=10)
    for i in range(10):
        clock.now += 0.1
        breaker.record(i % 2 == 0)  # alternate: never 2 in a row, but 50% failures
    assert breaker.state is BreakerState.OPEN


def test_breaker_failure_rate_forgets_old_failures() -> None:
    breaker, clock = make_breaker(consecutive_failures=100, failure_rate=0.5, min_requests=10, window=10)
    for _ in range(4):
        breaker.record(False)
    clock.now += 30
    for _ in range(9):
        breaker.record(True)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.policy.failure_rate() == 0


def test_breaker_release_frees_the_probe_without_judging() -> None:
    breaker, clock = make_breaker()
    for _ in range(3):
        breaker.record(False)
    clock.now += 5
    assert breaker.allow()
    breaker.release()  # e.g. the client went away
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_breaker_recover_and_force_open() -> None:
    breaker, _ = make_breaker()
    breaker.force_open(10)
    assert not breaker.available()
    breaker.recover()
    assert breaker.state is BreakerState.CLOSED and breaker.allow()


@pytest.mark.parametrize("ok", [True, False])
def test_stragglers_after_a_trip_are_ignored(ok: bool) -> None:
    breaker, _ = make_breaker()
    for _ in range(3):
        breaker.record(False)
    until = breaker.open_until
    breaker.record(ok)  # an attempt started before the trip
    assert breaker.state is BreakerState.OPEN and breaker.open_until == until
