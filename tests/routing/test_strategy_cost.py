"""``cost``: the cheapest capable deployment (with the capability and tier filters)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.cost import CostOptions, CostStrategy
from stellwerk.routing.strategies.filters import CapabilityFilter

REQ = RequestFacts(model="chat", prompt_tokens=1000, expected_output_tokens=200)


def priced(id: str, inp: float, out: float, **fields: object) -> Candidate:
    return Candidate(id=id, input_per_mtok=inp, output_per_mtok=out, **fields)  # type: ignore[arg-type]


def cheapest_capable(cands: Sequence[Candidate], request: RequestFacts, options: CostOptions | None = None) -> list[str]:
    kept, _ = CapabilityFilter().apply(cands, request)
    return CostStrategy(options).rank(kept, request).ids


def test_estimated_cost_and_order() -> None:
    cands = [priced("gpt", 2.5, 10.0), priced("mini", 0.15, 0.60), priced("llama", 0.05, 0.08)]
    ranking = CostStrategy().rank(cands, REQ)
    assert ranking.ids == ["llama", "mini", "gpt"]
    assert ranking.order[0].score == pytest.approx((1000 * 0.05 + 200 * 0.08) / 1e6)
    assert ranking.summary == "cost: llama ($0.000066 vs $0.000270)"


def test_max_tokens_is_the_output_estimate_when_set() -> None:
    # Cheap input, dear output vs the opposite: which is cheaper depends on the output length.
    cands = [priced("dear-out", 0.1, 20.0), priced("dear-in", 5.0, 0.1)]
    assert CostStrategy().rank(cands, RequestFacts(model="m", prompt_tokens=1000, max_output_tokens=10)).ids[0] == "dear-out"
    assert CostStrategy().rank(cands, RequestFacts(model="m", prompt_tokens=1000, max_output_tokens=4000)).ids[0] == "dear-in"


@pytest.mark.parametrize(("request_fields", "lacking"), [
    ({"needs_tools": True}, {"supports_tools": False}),
    ({"needs_vision": True}, {"supports_vision": False}),
    ({"needs_json": True}, {"supports_json": False}),
    ({"prompt_tokens": 7000}, {"context_window": 8192}),
    ({"max_output_tokens": 8000}, {"max_output_tokens": 4096}),
])
def test_cheapest_capable_skips_the_cheaper_incapable_one(request_fields: dict[str, object], lacking: dict[str, object]) -> None:
    cands = [priced("cheap", 0.1, 0.1, **lacking), priced("capable", 1.0, 1.0)]
    request = RequestFacts(model="m", expected_output_tokens=2000, **request_fields)  # type: ignore[arg-type]
    assert cheapest_capable(cands, request) == ["capable"]
    assert cheapest_capable(cands, RequestFacts(model="m")) == ["cheap", "capable"]


def test_capability_filter_says_why() -> None:
    request = RequestFacts(model="m", prompt_tokens=7000, max_output_tokens=2000, needs_tools=True)
    cands = [priced("small", 0, 0, context_window=8192), priced("notools", 0, 0, supports_tools=False), priced("ok", 0, 0)]
    kept, removed = CapabilityFilter().apply(cands, request)
    assert [c.id for c in kept] == ["ok"]
    assert removed == [("small", "context: needs ~9000 tokens, window 8192"), ("notools", "no tools")]


def test_ties_are_broken_by_latency_then_listed_order() -> None:
    request = RequestFacts(model="m", prompt_tokens=100)
    cands = [priced("unknown", 1, 1), priced("slow", 1, 1, latency=2.0), priced("fast", 1, 1, latency=0.5),
             priced("dear", 2, 2, latency=0.1), priced("fast-stream", 1, 1, latency=3.0, ttft=0.05)]
    assert CostStrategy().rank(cands, request).ids == ["fast", "slow", "fast-stream", "unknown", "dear"]
    stream = RequestFacts(model="m", prompt_tokens=100, stream=True)
    assert CostStrategy().rank(cands, stream).ids == ["fast-stream", "fast", "slow", "unknown", "dear"]


def test_tie_tolerance_lets_latency_decide_among_nearly_equal_costs() -> None:
    cands = [priced("a", 1.00, 1.00, latency=2.0), priced("b", 1.03, 1.03, latency=0.5), priced("c", 1.5, 1.5, latency=0.1)]
    assert CostStrategy().rank(cands, REQ).ids == ["a", "b", "c"]
    assert CostStrategy(CostOptions(tie_tolerance=0.05)).rank(cands, REQ).ids == ["b", "a", "c"]


def test_min_tier() -> None:
    cands = [priced("tiny", 0.01, 0.01, tier=1), priced("mid", 0.5, 0.5, tier=2), priced("top", 5, 5, tier=3)]
    ranking = CostStrategy(CostOptions(min_tier=2)).rank(cands, REQ)
    assert ranking.ids == ["mid", "top"]
    assert ranking.summary.endswith("; 1 below tier 2)")
    none_left = CostStrategy(CostOptions(min_tier=4)).rank(cands, REQ)
    assert none_left.ids == [] and none_left.summary == "cost: no candidates; 3 below tier 4"
    assert CostStrategy().rank([], REQ).ids == []
