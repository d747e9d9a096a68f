"""``failover``, ``least-busy`` and ``throughput``."""

from __future__ import annotations

import random
from collections import Counter

from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.failover import FailoverOptions, FailoverStrategy
from stellwerk.routing.strategies.least_busy import LeastBusyOptions, LeastBusyStrategy
from stellwerk.routing.strategies.throughput import ThroughputOptions, ThroughputStrategy

REQ = RequestFacts(model="chat")


def test_failover_listed_order() -> None:
    cands = [Candidate(id=x) for x in "cab"]
    ranking = FailoverStrategy().rank(cands, REQ)
    assert ranking.ids == ["c", "a", "b"]
    assert ranking.summary == "failover: c (listed first)"


def test_failover_by_priority_ties_keep_listed_order() -> None:
    cands = [Candidate(id="a", priority=2), Candidate(id="b", priority=1), Candidate(id="c", priority=2),
             Candidate(id="d", priority=1)]
    ranking = FailoverStrategy().rank(cands, REQ)
    assert ranking.ids == ["b", "d", "a", "c"]
    assert ranking.summary == "failover: b (priority 1)"
    assert FailoverStrategy(FailoverOptions(by_priority=False)).rank(cands, REQ).ids == ["a", "b", "c", "d"]
    assert FailoverStrategy().rank([], REQ).summary == "failover: no candidates"


def test_least_busy_fewest_in_flight_ties_in_listed_order(rng: random.Random) -> None:
    cands = [Candidate(id="a", in_flight=2), Candidate(id="b", in_flight=0), Candidate(id="c", in_flight=1),
             Candidate(id="d", in_flight=0)]
    ranking = LeastBusyStrategy(rng=rng).rank(cands, REQ)
    assert ranking.ids == ["b", "d", "c", "a"]
    assert ranking.summary == "least-busy: b (0 in flight vs 0)"


def test_least_busy_random_ties_spread_over_the_least_busy_only(rng: random.Random) -> None:
    s = LeastBusyStrategy(LeastBusyOptions(ties="random"), rng=rng)
    cands = [Candidate(id="a", in_flight=2), Candidate(id="b"), Candidate(id="c", in_flight=1), Candidate(id="d")]
    firsts: Counter[str] = Counter()
    for _ in range(2000):
        ids = s.rank(cands, REQ).ids
        firsts[ids[0]] += 1
        assert ids[2:] == ["c", "a"]
    assert set(firsts) == {"b", "d"} and abs(firsts["b"] - firsts["d"]) < 200


def test_least_busy_follows_in_flight_in_a_burst(rng: random.Random) -> None:
    s = LeastBusyStrategy(rng=rng)
    in_flight = {"a": 0, "b": 0, "c": 0}
    for _ in range(30):  # nothing completes: the burst is spread evenly
        chosen = s.rank([Candidate(id=d, in_flight=n) for d, n in in_flight.items()], REQ).ids[0]
        in_flight[chosen] += 1
    assert in_flight == {"a": 10, "b": 10, "c": 10}


def test_throughput_fastest_first(rng: random.Random) -> None:
    s = ThroughputStrategy(ThroughputOptions(explore_probability=0.0), rng=rng)
    cands = [Candidate(id="a", tokens_per_second=40, observations=9), Candidate(id="b", tokens_per_second=90, observations=9),
             Candidate(id="c", tokens_per_second=40, observations=9)]
    ranking = s.rank(cands, REQ)
    assert ranking.ids == ["b", "a", "c"]
    assert ranking.summary == "throughput: b (90 tok/s vs 40)"


def test_throughput_explores_new_deployments(rng: random.Random) -> None:
    cands = [Candidate(id="a", tokens_per_second=40, observations=9), Candidate(id="new", tokens_per_second=10, observations=1),
             Candidate(id="b", tokens_per_second=90, observations=9), Candidate(id="unseen")]
    ranking = ThroughputStrategy(ThroughputOptions(explore_probability=0.0), rng=rng).rank(cands, REQ)
    # New ones are assumed to be as fast as the median of the known (65 tok/s), not their first figure.
    assert ranking.ids == ["b", "new", "unseen", "a"]
    assert ranking.order[1].score == 65
    best = ThroughputStrategy(ThroughputOptions(explore_probability=0.0, assume_new="best"), rng=rng)
    assert best.rank(cands, REQ).ids == ["new", "b", "unseen", "a"]  # as fast as the best: ties keep listed order
    explorer = ThroughputStrategy(ThroughputOptions(explore_probability=1.0), rng=rng)
    firsts = Counter(explorer.rank(cands, REQ).ids[0] for _ in range(1000))
    assert set(firsts) == {"new", "unseen"}
    assert explorer.rank(cands, REQ).summary.startswith("throughput: ") and "explore" in explorer.rank(cands, REQ).summary
