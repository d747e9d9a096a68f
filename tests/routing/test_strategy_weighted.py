"""``weighted`` (smooth weighted round robin) and ``weighted-random``."""

from __future__ import annotations

import random
from collections import Counter

from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.weighted import WeightedStrategy
from stellwerk.routing.strategies.weighted_random import WeightedRandomStrategy

REQ = RequestFacts(model="chat")


def weighted(**weights: float) -> list[Candidate]:
    return [Candidate(id=name, weight=w, index=i) for i, (name, w) in enumerate(weights.items())]


def picks(strategy: WeightedStrategy, candidates: list[Candidate], n: int) -> str:
    return "".join(strategy.rank(candidates, REQ).ids[0] for _ in range(n))


def test_nginx_sequence_for_5_1_1() -> None:
    s = WeightedStrategy()
    assert picks(s, weighted(a=5, b=1, c=1), 21) == "aabacaa" * 3


def test_order_is_pick_then_next_picks() -> None:
    s = WeightedStrategy()
    cands = weighted(a=5, b=1, c=1)
    ranking = s.rank(cands, REQ)
    assert ranking.ids == ["a", "b", "c"]
    assert ranking.summary == "weighted: a (swrr: weight 5 of 7)"
    # The fallbacks are in the order they would be picked next.
    s.rank(cands, REQ)
    third = s.rank(cands, REQ)
    assert third.ids == ["b", "a", "c"]
    assert s.rank(cands, REQ).ids[0] == "a"


def test_exact_proportions_each_cycle_and_no_bursts() -> None:
    gen = random.Random(7)
    for _ in range(30):
        weights = [gen.randint(1, 12) for _ in range(gen.randint(2, 7))]
        cands = [Candidate(id=f"d{i}", weight=w) for i, w in enumerate(weights)]
        total = sum(weights)
        s = WeightedStrategy()
        counts: Counter[str] = Counter()
        for k in range(1, 3 * total + 1):
            counts[s.rank(cands, REQ).ids[0]] += 1
            # Smooth: at every prefix each deployment is less than one pick away from its exact share.
            for c in cands:
                assert abs(counts[c.id] - k * c.weight / total) < 1
            if k % total == 0:
                assert [counts[c.id] for c in cands] == [w * k // total for w in weights]


def test_runtime_weight_change_applies_at_once() -> None:
    s = WeightedStrategy()
    assert Counter(picks(s, weighted(a=1, b=1), 10)) == {"a": 5, "b": 5}
    seq = picks(s, weighted(a=3, b=1), 40)
    assert 29 <= seq.count("a") <= 31
    assert "bb" not in seq


def test_missing_candidate_keeps_state_and_returns_smoothly() -> None:
    s = WeightedStrategy()
    three = weighted(a=1, b=1, c=1)
    picks(s, three, 4)
    without_b = Counter(picks(s, [three[0], three[2]], 6))
    assert without_b["b"] == 0 and abs(without_b["a"] - without_b["c"]) <= 2
    back = Counter(picks(s, three, 30))
    assert all(9 <= back[x] <= 11 for x in "abc")


def test_zero_weight_is_only_a_last_fallback() -> None:
    s = WeightedStrategy()
    cands = weighted(a=0, b=2, c=1)
    for _ in range(9):
        assert s.rank(cands, REQ).ids[-1] == "a"
    all_zero = s.rank(weighted(x=0, y=0), REQ)
    assert all_zero.ids == ["x", "y"] and "all weights 0" in all_zero.summary


def test_empty() -> None:
    assert WeightedStrategy().rank([], REQ).ids == []


def test_weighted_random_proportions(rng: random.Random) -> None:
    s = WeightedRandomStrategy(rng=rng)
    cands = weighted(a=5, b=3, c=2)
    n = 20_000
    firsts = Counter(s.rank(cands, REQ).ids[0] for _ in range(n))
    for c in cands:
        assert abs(firsts[c.id] / n - c.weight / 10) < 0.015


def test_weighted_random_second_place_is_weighted_among_the_rest(rng: random.Random) -> None:
    s = WeightedRandomStrategy(rng=rng)
    cands = weighted(a=8, b=1, c=1)
    # Whenever a is first, b and c are equally likely second; every order holds each id once.
    seconds: Counter[str] = Counter()
    for _ in range(10_000):
        ids = s.rank(cands, REQ).ids
        assert sorted(ids) == ["a", "b", "c"]
        if ids[0] == "a":
            seconds[ids[1]] += 1
    assert abs(seconds["b"] / (seconds["b"] + seconds["c"]) - 0.5) < 0.03


def test_weighted_random_zero_weight_last_and_seeded_repeatable() -> None:
    cands = weighted(a=0, b=1, c=1)
    one = [WeightedRandomStrategy(rng=random.Random(3)).rank(cands, REQ).ids for _ in range(1)]
    s1, s2 = WeightedRandomStrategy(rng=random.Random(3)), WeightedRandomStrategy(rng=random.Random(3))
    runs = [(s1.rank(cands, REQ).ids, s2.rank(cands, REQ).ids) for _ in range(50)]
    assert all(x == y and x[-1] == "a" for x, y in runs)
    assert one[0][-1] == "a"
