"""``latency`` (P2C over peak-EWMA cost) and the moving averages behind it, in virtual time."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.ewma import EWMA, PeakEWMA
from stellwerk.routing.strategies.latency import LatencyOptions, LatencyStrategy

REQ = RequestFacts(model="chat", expected_output_tokens=200)


def known(id: str, latency: float, **fields: object) -> Candidate:
    return Candidate(id=id, latency=latency, observations=50, **fields)  # type: ignore[arg-type]


# -- PeakEWMA / EWMA -------------------------------------------------------------------------------------------------
def test_peak_ewma_jumps_up_at_once_and_decays_toward_lower_observations() -> None:
    e = PeakEWMA(tau=10.0)
    assert e.value(0.0) is None
    e.observe(0.2, now=0.0)
    e.observe(2.0, now=1.0)
    assert e.value(1.0) == 2.0  # a new peak counts in full at once
    e.observe(0.2, now=11.0)  # 10 s later = one tau: the old value keeps weight 1/e
    w = math.exp(-1.0)
    assert e.value(11.0) == pytest.approx(2.0 * w + 0.2 * (1 - w))
    assert e.count == 3


def test_peak_ewma_idle_decay_makes_a_slow_deployment_look_cheap_again() -> None:
    e = PeakEWMA(tau=5.0)
    e.observe(2.0, now=0.0)
    assert e.value(5.0) == pytest.approx(2.0 / math.e)
    assert e.value(5.0 * math.log(10)) == pytest.approx(0.2)  # probed again after tau * ln(cost ratio)


def test_ewma_is_time_weighted_and_does_not_decay_when_idle() -> None:
    e = EWMA(tau=2.0)
    assert e.value() is None
    e.observe(10.0, now=0.0)
    e.observe(20.0, now=2.0)
    assert e.value() == pytest.approx(10.0 / math.e + 20.0 * (1 - 1 / math.e))
    e.observe(0.0, now=1.0)  # an out-of-order stamp counts as no time passed
    assert e.value() == pytest.approx(10.0 / math.e + 20.0 * (1 - 1 / math.e))


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf, math.nan])
def test_tau_must_be_positive(tau: float) -> None:
    with pytest.raises(ValueError, match="tau"):
        PeakEWMA(tau)
    with pytest.raises(ValueError, match="tau"):
        EWMA(tau)


# -- P2C ------------------------------------------------------------------------------------------------------------
def test_p2c_picks_the_cheaper_of_two_and_orders_the_rest_by_cost(rng: random.Random) -> None:
    s = LatencyStrategy(rng=rng)
    cands = [known("a", 0.9), known("b", 0.2), known("c", 0.5)]
    firsts: Counter[str] = Counter()
    for _ in range(3000):
        ranking = s.rank(cands, REQ)
        firsts[ranking.ids[0]] += 1
        assert ranking.ids[1:] == sorted(ranking.ids[1:], key=lambda i: {"a": 0.9, "b": 0.2, "c": 0.5}[i])
    # The worst is never picked by P2C (it loses every pair); the best wins every pair it is in (2/3).
    assert firsts["a"] == 0
    assert abs(firsts["b"] / 3000 - 2 / 3) < 0.03


def test_summary_explains_the_pair() -> None:
    s = LatencyStrategy(rng=random.Random(1))
    ranking = s.rank([known("eu-1", 0.21), known("us-1", 0.35, in_flight=1)], REQ)
    assert ranking.summary == "latency: eu-1 (p2c: ewma 0.21s vs ewma 0.35s*2)"
    assert ranking.order[0].score == pytest.approx(0.21)
    assert ranking.order[1].score == pytest.approx(0.70)


def test_in_flight_multiplies_the_cost(rng: random.Random) -> None:
    s = LatencyStrategy(rng=rng)
    cands = [known("fast", 0.2, in_flight=5), known("slow", 0.5)]  # 1.2 vs 0.5
    assert all(s.rank(cands, REQ).ids == ["slow", "fast"] for _ in range(20))


def test_streams_use_ttft_and_long_answers_use_decode_speed(rng: random.Random) -> None:
    s = LatencyStrategy(LatencyOptions(long_answer_tokens=1000), rng=rng)
    a = known("a", 1.0, ttft=0.1, seconds_per_token=0.05)
    b = known("b", 0.5, ttft=0.4, seconds_per_token=0.01)
    assert s.rank([a, b], RequestFacts(model="m")).ids[0] == "b"                       # latency 0.5 < 1.0
    assert s.rank([a, b], RequestFacts(model="m", stream=True)).ids[0] == "a"          # ttft 0.1 < 0.4
    long = RequestFacts(model="m", stream=True, max_output_tokens=2000)                 # 100.1 s vs 20.4 s
    ranking = s.rank([a, b], long)
    assert ranking.ids[0] == "b" and ranking.order[0].score == pytest.approx(0.4 + 0.01 * 2000)


def test_new_deployments_are_explored(rng: random.Random) -> None:
    s = LatencyStrategy(LatencyOptions(explore_probability=0.0), rng=rng)
    cands = [known("a", 0.2), known("b", 0.4), Candidate(id="new", latency=5.0, observations=1)]
    firsts = Counter(s.rank(cands, REQ).ids[0] for _ in range(3000))
    # Assumed the median of the known ones (0.3), it wins its pair against b: about 1/3 of all picks.
    assert abs(firsts["new"] / 3000 - 1 / 3) < 0.03
    ranking = LatencyStrategy(LatencyOptions(explore_probability=1.0), rng=rng).rank(cands, REQ)
    assert ranking.ids[0] == "new" and ranking.summary == "latency: new (explore: new, 1 observations)"


def test_no_figures_at_all_spreads_by_in_flight(rng: random.Random) -> None:
    s = LatencyStrategy(LatencyOptions(explore_probability=0.0), rng=rng)
    cands = [Candidate(id="a", in_flight=3), Candidate(id="b"), Candidate(id="c")]
    firsts = Counter(s.rank(cands, REQ).ids[0] for _ in range(3000))
    assert firsts["a"] < firsts["b"] and firsts["a"] < firsts["c"]
    assert s.rank(cands[:1], REQ).summary.startswith("latency: a (only candidate")
    assert s.rank([], REQ).ids == []


class Simulation:
    """Requests one after another in virtual time: rank -> serve with the true latency -> observe."""

    def __init__(self, latencies: dict[str, float], seed: int = 5) -> None:
        self.true = dict(latencies)
        self.ewma = {d: PeakEWMA(tau=5.0) for d in latencies}
        self.now = 0.0
        self.strategy = LatencyStrategy(rng=random.Random(seed))

    def step(self) -> str:
        self.now += 0.1
        cands = [Candidate(id=d, index=i, latency=e.value(self.now), observations=e.count)
                 for i, (d, e) in enumerate(self.ewma.items())]
        chosen = self.strategy.rank(cands, REQ).ids[0]
        self.ewma[chosen].observe(self.true[chosen], self.now)
        return chosen

    def run(self, n: int) -> list[str]:
        return [self.step() for _ in range(n)]


def test_traffic_moves_away_from_a_slow_deployment_and_back_when_it_recovers() -> None:
    sim = Simulation({"a": 0.2, "b": 0.2, "c": 0.2})
    warm = Counter(sim.run(300))
    assert all(warm[d] > 60 for d in "abc")

    sim.true["b"] = 2.0
    slow = sim.run(300)
    assert slow[:30].count("b") <= 2          # its next answer shows the new peak: traffic leaves at once
    assert slow.count("b") <= 8               # later only probes, once the idle decay makes it look cheap

    sim.true["b"] = 0.2
    recovered = sim.run(600)
    assert recovered[-200:].count("b") > 40   # back to about a third
