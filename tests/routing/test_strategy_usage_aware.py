"""``usage-aware`` and the limits filter: headroom first, never over a configured limit."""

from __future__ import annotations

import pytest

from stellwerk.routing.strategies.base import Candidate, RequestFacts, Scored
from stellwerk.routing.strategies.filters import LimitsFilter, headroom
from stellwerk.routing.strategies.usage_aware import UsageAwareOptions, UsageAwareStrategy

REQ = RequestFacts(model="chat", prompt_tokens=300, expected_output_tokens=200)  # ~500 tokens


class Window:
    """Per-deployment RPM/TPM counters of the current minute, as the router keeps them."""

    def __init__(self, rpm: dict[str, int], tpm: dict[str, int] | None = None) -> None:
        self.rpm, self.tpm = rpm, tpm or {}
        self.reset()

    def reset(self) -> None:
        self.requests = dict.fromkeys(self.rpm, 0)
        self.tokens = dict.fromkeys(self.rpm, 0)

    def snapshot(self) -> list[Candidate]:
        return [Candidate(id=d, index=i, rpm_limit=self.rpm[d], tpm_limit=self.tpm.get(d),
                          rpm_used=self.requests[d], tpm_used=self.tokens[d]) for i, d in enumerate(self.rpm)]

    def serve(self, strategy: UsageAwareStrategy, request: RequestFacts) -> str | None:
        ids = strategy.rank(self.snapshot(), request).ids
        if not ids:
            return None
        self.requests[ids[0]] += 1
        self.tokens[ids[0]] += request.prompt_tokens + request.expected_output_tokens
        return ids[0]


def test_burst_never_exceeds_configured_rpm() -> None:
    window = Window({"a": 10, "b": 5, "c": 20})
    s = UsageAwareStrategy()
    served = [window.serve(s, REQ) for _ in range(50)]
    assert window.requests == {"a": 10, "b": 5, "c": 20}
    assert served[35:] == [None] * 15
    # Spread by remaining fraction, not drained one after the other.
    assert {"a", "b", "c"} <= set(served[:12])
    window.reset()  # the next minute
    assert window.serve(s, REQ) is not None


def test_burst_never_exceeds_configured_tpm() -> None:
    window = Window({"a": 1000, "b": 1000}, tpm={"a": 5000, "b": 2600})
    s = UsageAwareStrategy()
    while window.serve(s, REQ) is not None:
        pass
    assert window.tokens == {"a": 5000, "b": 2500}


def test_summary_and_exhausted_ones_left_out() -> None:
    cands = [Candidate(id="full", rpm_limit=10, rpm_used=10), Candidate(id="half", rpm_limit=10, rpm_used=4),
             Candidate(id="free")]
    ranking = UsageAwareStrategy().rank(cands, REQ)
    assert ranking.ids == ["free", "half"]
    assert ranking.summary == "usage-aware: free (headroom 100% vs 50%; 1 at their limit)"
    assert ranking.order[1] == Scored("half", 0.5, "tightest: rpm")
    none = UsageAwareStrategy().rank(cands[:1], REQ)
    assert none.ids == [] and none.summary == "usage-aware: none with headroom (1 at their limit)"
    assert UsageAwareStrategy().rank([], REQ).summary == "usage-aware: no candidates"


def test_reserve_keeps_a_share_free() -> None:
    window = Window({"a": 10})
    s = UsageAwareStrategy(UsageAwareOptions(reserve=0.2))
    while window.serve(s, REQ) is not None:
        pass
    assert window.requests == {"a": 8}


def test_provider_remaining_headers_count() -> None:
    cands = [Candidate(id="a", remaining_requests=0), Candidate(id="b", remaining_tokens=400),
             Candidate(id="c", remaining_requests=50, limit_requests=1000),
             Candidate(id="d", remaining_requests=900, limit_requests=1000)]
    assert UsageAwareStrategy().rank(cands, REQ).ids == ["d", "c"]


@pytest.mark.parametrize(("candidate", "expected"), [
    (Candidate(id="x"), (1.0, "")),
    (Candidate(id="x", rpm_limit=10, rpm_used=4), (0.5, "rpm")),
    (Candidate(id="x", tpm_limit=1000, tpm_used=0), (0.5, "tpm")),
    (Candidate(id="x", rpm_limit=10, tpm_limit=1000, tpm_used=400), (0.1, "tpm")),
    (Candidate(id="x", remaining_requests=11, rpm_limit=100), (0.1, "requests")),
    (Candidate(id="x", remaining_requests=5), (0.8, "requests")),      # no limit known: relative to what is left
    (Candidate(id="x", remaining_tokens=1000, limit_tokens=10_000), (0.05, "tokens")),
    (Candidate(id="x", rpm_limit=0), (-1.0, "rpm")),
])
def test_headroom(candidate: Candidate, expected: tuple[float, str]) -> None:
    left, which = headroom(candidate, 500)
    assert (round(left, 9), which) == expected


def test_limits_filter_removes_those_without_headroom_and_says_why() -> None:
    cands = [Candidate(id="rpm", rpm_limit=60, rpm_used=60), Candidate(id="tpm", tpm_limit=10_000, tpm_used=9_800),
             Candidate(id="prov-req", remaining_requests=0), Candidate(id="prov-tok", remaining_tokens=100),
             Candidate(id="ok", rpm_limit=60, rpm_used=59, tpm_limit=10_000, tpm_used=9_500)]
    kept, removed = LimitsFilter().apply(cands, REQ)
    assert [c.id for c in kept] == ["ok"]
    assert removed == [
        ("rpm", "rpm limit: 60 of 60 used this window"),
        ("tpm", "tpm limit: 9800 + ~500 > 10000"),
        ("prov-req", "provider: 0 requests remaining"),
        ("prov-tok", "provider: 100 tokens remaining, needs ~500"),
    ]
