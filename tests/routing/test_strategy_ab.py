"""``ab``: sticky variants (stable across restarts), splits, fallbacks, runtime updates, stats."""

from __future__ import annotations

import random
from collections import Counter

import msgspec
import pytest

from stellwerk.routing.strategies.ab import ABOptions, ABStrategy, Variant, bucket_of
from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.experiments import ExperimentStats

CANDS = [Candidate(id=d, index=i) for i, d in enumerate(["a", "b", "c", "x"])]


def options(*split: tuple[str, list[str], float], sticky_on: str = "user", salt: str = "") -> ABOptions:
    return ABOptions(variants=[Variant(name=n, deployments=d, percent=p) for n, d, p in split], sticky_on=sticky_on, salt=salt)


CANARY = options(("control", ["a", "c"], 95), ("canary", ["b"], 5))


def user(name: str | None) -> RequestFacts:
    return RequestFacts(model="chat", user=name)


def test_order_assigned_variant_then_other_variants_then_the_rest() -> None:
    s = ABStrategy(CANARY, rng=random.Random(1))
    users = [f"user-{i}" for i in range(200)]
    orders = {tuple(s.rank(CANDS, user(u)).ids) for u in users}
    assert orders == {("a", "c", "b", "x"), ("b", "a", "c", "x")}
    ranking = s.rank(CANDS, user("user-1"))
    a = s.assign(user("user-1"))
    assert ranking.summary == f"ab: {ranking.ids[0]} (variant {a.variant}, bucket {a.bucket} by user)"
    assert ranking.order[-1].reason == "in no variant"


def test_sticky_across_fresh_instances_and_rngs() -> None:
    users = [f"user-{i}" for i in range(500)]
    first = ABStrategy(CANARY, rng=random.Random(1))
    restarted = ABStrategy(msgspec.convert(msgspec.to_builtins(CANARY), ABOptions), rng=random.Random(999))
    assert [first.rank(CANDS, user(u)).ids for u in users] == [restarted.rank(CANDS, user(u)).ids for u in users]
    assert all(first.assign(user(u)).sticky for u in users)


def test_bucket_is_a_fixed_function_of_value_and_salt() -> None:
    # BLAKE2b, not hash(): the same in every process and Python version.
    assert bucket_of("alice") == bucket_of("alice")
    assert 0 <= bucket_of("alice") < 10_000
    assert bucket_of("alice", salt="exp-2") != bucket_of("alice")
    assert bucket_of("alice") == 5339  # pinned: a change here reshuffles every running experiment


@pytest.mark.parametrize("split", [
    (("control", ["a"], 95), ("canary", ["b"], 5)),
    (("a", ["a"], 50), ("b", ["b"], 50)),
    (("a", ["a"], 70), ("b", ["b"], 20), ("c", ["c"], 10)),
])
def test_split_within_two_percent_over_10k_users(split: tuple[tuple[str, list[str], float], ...]) -> None:
    s = ABStrategy(options(*split), rng=random.Random(1))
    counts = Counter(s.rank(CANDS, user(f"u{i}")).order[0].reason for i in range(10_000))
    for name, _, percent in split:
        assert abs(counts[f"variant {name}"] / 100 - percent) <= 2


def test_requests_without_the_value_are_assigned_by_the_rng() -> None:
    s = ABStrategy(CANARY, rng=random.Random(7))
    firsts = Counter(s.rank(CANDS, user(None)).ids[0] for _ in range(10_000))
    assert abs(firsts["b"] / 10_000 - 0.05) < 0.01
    assert not s.assign(user(None)).sticky
    assert "random" in s.rank(CANDS, user("")).summary


def test_sticky_on_header_and_metadata() -> None:
    by_header = ABStrategy(options(("a", ["a"], 50), ("b", ["b"], 50), sticky_on="header:X-Tenant"), rng=random.Random(1))
    by_meta = ABStrategy(options(("a", ["a"], 50), ("b", ["b"], 50), sticky_on="metadata:tenant"), rng=random.Random(2))
    for t in ("t1", "t2", "t3", "t4"):
        h = {by_header.rank(CANDS, RequestFacts(model="m", headers={"x-tenant": t})).ids[0] for _ in range(20)}
        m = {by_meta.rank(CANDS, RequestFacts(model="m", metadata={"tenant": t})).ids[0] for _ in range(20)}
        assert len(h) == 1 and h == m  # same value, same salt: same bucket, whatever the source


def test_unavailable_variant_falls_back() -> None:
    s = ABStrategy(CANARY, rng=random.Random(1))
    canary_user = next(f"u{i}" for i in range(1000) if s.assign(user(f"u{i}")).variant == "canary")
    ranking = s.rank([c for c in CANDS if c.id != "b"], user(canary_user))
    assert ranking.ids == ["a", "c", "x"]
    assert "variant canary" in ranking.summary and "none available, fallback" in ranking.summary
    assert s.rank([], user("u")).ids == []


def test_new_options_move_users_only_into_the_growing_canary() -> None:
    # A runtime change builds a new strategy (into a new routing table): buckets are a hash, so nobody moves back.
    s = ABStrategy(CANARY, rng=random.Random(1))
    users = [f"u{i}" for i in range(5000)]
    before = {u: s.assign(user(u)).variant for u in users}
    s = ABStrategy(options(("control", ["a", "c"], 90), ("canary", ["b"], 10)), rng=random.Random(2))
    after = {u: s.assign(user(u)).variant for u in users}
    assert all(after[u] == "canary" for u in users if before[u] == "canary")
    assert abs(sum(v == "canary" for v in after.values()) / 5000 - 0.10) < 0.02
    assert s.options.variants[1].percent == 10


@pytest.mark.parametrize(("variants", "message"), [
    ([{"name": "a", "deployments": ["a"], "percent": 60}], "add up to 60, expected 100"),
    ([{"name": "a", "deployments": ["a"], "percent": 50}, {"name": "a", "deployments": ["b"], "percent": 50}], "used twice"),
    ([{"name": "a", "deployments": ["a"], "percent": 50}, {"name": "b", "deployments": ["a"], "percent": 50}],
     "deployment 'a' is in both variants 'a' and 'b'"),
    ([{"name": "a", "deployments": [], "percent": 100}], "length >= 1"),
])
def test_options_are_checked(variants: list[dict[str, object]], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert({"variants": variants}, ABOptions)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"variants": [{"name": "a", "deployments": ["a"], "percent": 100}], "sticky_on": "cookie"}, ABOptions)


def test_experiment_stats() -> None:
    stats = ExperimentStats()
    stats.record("control", 0.2, error=False, cost=0.001)
    stats.record("control", 0.4, error=False, cost=0.003)
    stats.record("control", None, error=True)
    stats.record("canary", 1.0, error=False, cost=0.01)
    snap = stats.snapshot()
    assert snap["control"] == {"requests": 3, "errors": 1, "error_rate": pytest.approx(1 / 3), "latency_mean": pytest.approx(0.3),
                               "latency_max": 0.4, "cost_total": pytest.approx(0.004), "cost_mean": pytest.approx(0.004 / 3)}
    assert snap["canary"]["requests"] == 1
    stats.reset()
    assert stats.snapshot() == {}


def test_strategy_snapshot_for_the_admin_api() -> None:
    s = ABStrategy(CANARY, rng=random.Random(1))
    assert s.variant_of("b") == "canary"
    assert s.variant_of("x") is None
    snap = s.snapshot()
    assert snap["sticky_on"] == "user"
    assert snap["variants"][0] == {"name": "control", "percent": 95, "deployments": ["a", "c"]}
    assert snap["variants"][1] == {"name": "canary", "percent": 5, "deployments": ["b"]}
    msgspec.json.encode(snap)
