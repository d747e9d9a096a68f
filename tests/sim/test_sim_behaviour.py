"""Behaviour decisions in virtual time with a seeded RNG: no sleeping, no sockets."""

from __future__ import annotations

import random
import statistics
from collections import Counter

import pytest

from stellwerk.sim import Behaviour, Outage, Outcome, Profile


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(profile: Profile, seed: int = 1) -> tuple[Behaviour, FakeClock]:
    clock = FakeClock()
    return Behaviour(profile, clock=clock, rng=random.Random(seed)), clock


def outcomes(b: Behaviour, n: int) -> Counter[Outcome]:
    return Counter(b.decide(prompt_tokens=10, flagged=False).outcome for _ in range(n))


def test_fast_profile_is_always_instant_ok() -> None:
    b, _ = make(Profile())
    d = b.decide(10, False)
    assert d.outcome is Outcome.OK and d.ttft == 0 and d.token_interval == 0


def test_single_outage_window() -> None:
    b, clock = make(Profile(outages=(Outage(start=10, duration=5, status=502),)))
    seen = {}
    for t in (0, 9.99, 10, 14.99, 15, 100):
        clock.now = 1000.0 + t
        seen[t] = b.decide(10, False)
    assert [d.outcome for d in seen.values()] == [
        Outcome.OK, Outcome.OK, Outcome.ERROR, Outcome.ERROR, Outcome.OK, Outcome.OK,
    ]  # fmt: skip
    assert seen[10].status == 502


def test_periodic_outage_and_modes() -> None:
    outages = (Outage(start=0, duration=1, every=10, mode="refuse"), Outage(start=5, duration=1, every=10, mode="hang"))
    b, clock = make(Profile(outages=outages))
    expected = {0.5: Outcome.REFUSE, 20.5: Outcome.REFUSE, 25.5: Outcome.HANG, 3: Outcome.OK, 36: Outcome.OK}
    for t, outcome in expected.items():
        clock.now = 1000.0 + t
        assert b.decide(10, False).outcome is outcome, t


def test_restart_counts_outages_from_now() -> None:
    profile = Profile(outages=(Outage(start=0, duration=5),))
    b, clock = make(profile)
    clock.now += 10
    assert b.decide(10, False).outcome is Outcome.OK
    b.restart(profile, random.Random(1))
    assert b.decide(10, False).outcome is Outcome.ERROR


def test_outage_beats_everything_and_checks_come_in_order() -> None:
    b, _ = make(Profile(context_window=100, rate_limit_rate=1.0))
    assert b.decide(101, True).outcome is Outcome.CONTEXT_LENGTH
    assert b.decide(100, True).outcome is Outcome.CONTENT_POLICY
    assert b.decide(100, False).outcome is Outcome.RATE_LIMIT
    b.profile = b.profile.updated({"outages": [{"duration": 1}]})
    assert b.decide(101, True).outcome is Outcome.ERROR


def test_error_rate_one_always_errors_with_configured_statuses() -> None:
    b, _ = make(Profile(error_rate=1.0, error_statuses=(500, 503)))
    statuses = Counter(b.decide(10, False).status for _ in range(200))
    assert set(statuses) == {500, 503}


def test_rates_are_shares_of_all_requests() -> None:
    profile = Profile(rate_limit_rate=0.1, error_rate=0.2, hang_rate=0.05, drop_mid_stream_rate=0.05, malformed_rate=0.1)
    b, _ = make(profile, seed=42)
    counts = outcomes(b, 20_000)
    assert counts[Outcome.RATE_LIMIT] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.ERROR] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert counts[Outcome.HANG] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[Outcome.DROP] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[Outcome.MALFORMED] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Outcome.OK] / 20_000 == pytest.approx(0.5, abs=0.015)


def test_same_seed_same_decisions() -> None:
    profile = Profile(error_rate=0.3, rate_limit_rate=0.2, latency_ms=100, latency_sigma=0.5)
    b1, _ = make(profile, seed=3)
    b2, _ = make(profile, seed=3)
    b3, _ = make(profile, seed=4)
    run1 = [b1.decide(10, False) for _ in range(50)]
    assert run1 == [b2.decide(10, False) for _ in range(50)]
    assert run1 != [b3.decide(10, False) for _ in range(50)]


def test_rate_limit_carries_retry_after() -> None:
    b, _ = make(Profile(rate_limit_rate=1.0, retry_after_s=2.5))
    d = b.decide(10, False)
    assert (d.outcome, d.status, d.retry_after, d.ttft) == (Outcome.RATE_LIMIT, 429, 2.5, 0.0)


def test_fixed_and_lognormal_latency() -> None:
    b, _ = make(Profile(latency_ms=250))
    assert b.decide(10, False).ttft == pytest.approx(0.25)
    b, _ = make(Profile(latency_ms=300, latency_sigma=0.2), seed=5)
    ttfts = [b.decide(10, False).ttft for _ in range(5000)]
    assert statistics.fmean(ttfts) == pytest.approx(0.3, rel=0.03)
    deciles = statistics.quantiles(ttfts, n=20)
    assert deciles[0] > 0.2 and deciles[-1] < 0.43  # 90 % between ~200 and ~400 ms, as in "realistic"


def test_token_pace_range() -> None:
    b, _ = make(Profile(tokens_per_second=50, tokens_per_second_max=100))
    intervals = [b.decide(10, False).token_interval for _ in range(500)]
    assert all(1 / 100 <= i <= 1 / 50 for i in intervals)
    assert len(set(intervals)) > 100
    b, _ = make(Profile(tokens_per_second=20))
    assert b.decide(10, False).token_interval == pytest.approx(0.05)


def test_drop_and_malformed_carry_a_cut_point() -> None:
    b, _ = make(Profile(drop_mid_stream_rate=1.0))
    cuts = {b.decide(10, False).cut_fraction for _ in range(20)}
    assert len(cuts) > 1 and all(0 <= c < 1 for c in cuts)
