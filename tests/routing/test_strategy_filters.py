"""Panic mode and the tag and tier filters."""

from __future__ import annotations

import pytest

from stellwerk.resilience.panic import in_panic
from stellwerk.routing.strategies.base import Candidate, RequestFacts
from stellwerk.routing.strategies.filters import TagFilter, TagFilterOptions, TierFilter

REQ = RequestFacts(model="chat")


def ids(cands: list[Candidate]) -> list[str]:
    return [c.id for c in cands]


@pytest.mark.parametrize(("threshold", "healthy", "unhealthy", "panic"), [
    (0.0, 0, 3, False),
    (0.3, 1, 3, True),
    (0.3, 1, 2, False),
    (1.0, 9, 1, True),
    (0.5, 2, 2, False),  # exactly 50% healthy: not below the threshold
    (0.5, 1, 3, True),
    (0.5, 0, 0, False),  # nothing planned: nothing to panic about
])
def test_panic_threshold(threshold: float, healthy: int, unhealthy: int, panic: bool) -> None:
    assert in_panic(healthy, healthy + unhealthy, threshold) is panic


def tagged() -> list[Candidate]:
    return [Candidate(id="eu-1", tags={"region": "eu", "tier": "gold"}), Candidate(id="us-1", tags={"region": "us"}),
            Candidate(id="bare")]


def test_tags_from_header_metadata_and_config() -> None:
    f = TagFilter()
    assert f.apply(tagged(), REQ) == (tagged(), [])
    kept, removed = f.apply(tagged(), RequestFacts(model="m", headers={"x-stellwerk-tags": "region=eu"}))
    assert ids(kept) == ["eu-1"]
    assert removed == [("us-1", "needs region=eu (has us)"), ("bare", "needs region=eu (has none)")]
    kept, _ = f.apply(tagged(), RequestFacts(model="m", metadata={"stellwerk_tags": {"region": "us"}}))
    assert ids(kept) == ["us-1"]
    kept, _ = f.apply(tagged(), RequestFacts(model="m", metadata={"tags": {"region": "us"}}))
    assert ids(kept) == ids(tagged())  # the client's own metadata.tags is not a routing wish
    kept, _ = f.apply(tagged(), RequestFacts(model="m", metadata={"stellwerk_tags": "tier"}))  # a bare key: any value
    assert ids(kept) == ["eu-1"]
    configured = TagFilter(TagFilterOptions(require={"region": "us"}, header="X-Region-Tags", metadata_key=None))
    assert ids(configured.apply(tagged(), REQ)[0]) == ["us-1"]
    assert ids(configured.apply(tagged(), RequestFacts(model="m", headers={"x-region-tags": "region=eu"}))[0]) == ["eu-1"]
    assert ids(configured.apply(tagged(), RequestFacts(model="m", metadata={"stellwerk_tags": "region=eu"}))[0]) == ["us-1"]


def test_tier_filter() -> None:
    cands = [Candidate(id="a", tier=1), Candidate(id="b", tier=3)]
    assert TierFilter(2).apply(cands, REQ) == ([cands[1]], [("a", "tier 1 < 2")])
    assert TierFilter(1).apply(cands, REQ) == (cands, [])


def test_tag_reasons_are_header_safe() -> None:
    request = RequestFacts(model="m", metadata={"stellwerk_tags": {"region": "eu\r\nx-evil: 1", "zone": "é" * 100}})
    _, removed = TagFilter().apply(tagged(), request)
    assert all(why.isascii() and why.isprintable() for _, why in removed)
