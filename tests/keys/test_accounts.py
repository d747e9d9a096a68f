"""Admission arithmetic in virtual time: reservation, reconciliation, the tightest headers, windows and periods."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "resilience"))

from resilience_support import VirtualTime

from stellwerk import Router
from stellwerk.errors import QuotaExceededError, RateLimitError
from stellwerk.http.messages import head_pairs
from stellwerk.keys import Accounts
from stellwerk.keys.minute import MinuteWindow
from stellwerk.pipeline import Call, Operation
from stellwerk.resilience.window import SlidingCounter
from stellwerk.state.records import Budget, KeyRecord, TeamRecord, period_start
from stellwerk.telemetry import RequestFinished
from stellwerk.usage import Usage

ROUTER = Router.from_dict({"models": [{"name": "chat", "deployments": [
    {"id": "cheap", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1",
     "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
    {"id": "dear", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1",
     "price": {"input_per_mtok": 10, "output_per_mtok": 20}}]}]})


def call(max_tokens: int | None = 100) -> Call:
    body: dict[str, object] = {"model": "chat", "messages": [{"role": "user", "content": "x" * 40}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return ROUTER.call(Operation.CHAT, body)


def done(tokens: int, cost: float) -> RequestFinished:
    return RequestFinished(request_id="r", operation="chat", model="chat", deployment="cheap", status=200,
                           attempts=(), latency=0.1, ttft=None, stream=False, usage=Usage(tokens, 0), cost=cost)


def test_reserved_at_admission_and_reconciled() -> None:
    clock, wall = VirtualTime(), VirtualTime(1.7e9)
    accounts = Accounts(clock, wall=wall, reserve_tokens=500)
    key = KeyRecord(id="k", name="k", hash="h", tpm=1000, budget=Budget(usd=1.0, period="1d"))
    ticket = accounts.admit(call(None), key, None)
    account = accounts.account("key:k")
    prompt = call().facts.prompt_tokens(False)
    assert ticket.tokens == prompt + 500 and account.reserved_tokens == prompt + 500
    assert ticket.cost == pytest.approx((prompt * 10 + 500 * 20) / 1e6)  # at the dearest deployment
    ticket.settle(done(30, 0.001))
    ticket.settle(done(30, 0.001))  # once only
    assert (account.reserved_tokens, account.reserved_cost, account.inflight) == (0, 0.0, 0)
    assert accounts.used("key:k") == (1, 30) and account.spent == pytest.approx(0.001)
    assert accounts.usage("key:k", key) == (1, pytest.approx(0.001))


def test_a_burst_is_admitted_while_below_the_limit_only() -> None:
    accounts = Accounts(VirtualTime(), wall=VirtualTime(1.7e9))
    key = KeyRecord(id="k", name="k", hash="h", tpm=1000)
    tickets = []
    with pytest.raises(RateLimitError) as refused:
        for _ in range(50):
            tickets.append(accounts.admit(call(300), key, None))
    # admitted while what was reserved before it was below 1000: at 0, ~310, ~620 and ~930; so at most the
    # limit plus one request is ever reserved
    assert len(tickets) == 4
    assert accounts.account("key:k").reserved_tokens <= 1000 + tickets[0].tokens
    headers = dict(refused.value.headers)
    assert headers["x-ratelimit-limit-tokens"] == "1000" and headers["x-ratelimit-remaining-tokens"] == "0"
    for ticket in tickets:
        ticket.release()
    assert accounts.account("key:k").reserved_tokens == 0
    accounts.admit(call(300), key, None)


def test_the_tightest_limit_gives_the_headers_and_the_team_counts_every_key() -> None:
    accounts = Accounts(VirtualTime(), wall=VirtualTime(1.7e9))
    team = TeamRecord(name="t", rpm=3)
    one = KeyRecord(id="a", name="a", hash="h", team="t", rpm=10)
    two = KeyRecord(id="b", name="b", hash="h", team="t", rpm=2)
    assert dict(head_pairs(accounts.admit(call(), one, team).head))["x-ratelimit-remaining-requests"] == "2"  # team: 3 - 1
    assert dict(head_pairs(accounts.admit(call(), two, team).head))["x-ratelimit-remaining-requests"] == "1"  # key b: 2 - 1
    accounts.admit(call(), one, team)
    with pytest.raises(RateLimitError, match="team t"):
        accounts.admit(call(), one, team)


def test_budgets_refuse_once_spent_and_reset_with_their_period() -> None:
    wall = VirtualTime(period_start("1h", 1.7e9) + 10)
    accounts = Accounts(VirtualTime(), wall=wall)
    key = KeyRecord(id="k", name="k", hash="h", budget=Budget(usd=0.01, period="1h"))
    accounts.admit(call(), key, None).settle(done(10, 0.02))
    with pytest.raises(QuotaExceededError) as spent:
        accounts.admit(call(), key, None)
    assert dict(spent.value.headers)["retry-after"] == str(3600 - 10)
    wall.advance(3600)
    accounts.admit(call(), key, None)


def test_sliding_window_reset_in() -> None:
    clock = VirtualTime(100.0)
    counter = SlidingCounter(clock, 60)
    assert counter.reset_in() == 0
    counter.add(1)
    clock.advance(10.5)
    counter.add(1)
    assert counter.reset_in() == pytest.approx(49.5)
    clock.advance(50)  # the first second left the window
    assert counter.total() == 1 and counter.reset_in() == pytest.approx(9.5)  # second 110 leaves at 170
    clock.advance(10)
    assert counter.total() == 0 and counter.reset_in() == 0


def test_minute_window_sums_and_reset_in() -> None:
    window = MinuteWindow()
    assert window.reset_in(100.0, 1) == 0
    window.advance(100)
    window.count(100, 1, 0)
    window.advance(110)
    window.count(110, 1, 0)
    window.count(110, 0, 500)  # tokens at a later second than the oldest request
    assert (window.requests, window.tokens) == (2, 500)
    assert window.reset_in(110.5, 1) == pytest.approx(49.5) and window.reset_in(110.5, 2) == pytest.approx(59.5)
    window.advance(160)  # second 100 left the window
    assert (window.requests, window.tokens) == (1, 500) and window.reset_in(160.5, 1) == pytest.approx(9.5)
    window.advance(170)
    assert (window.requests, window.tokens) == (0, 0) and window.reset_in(170.0, 1) == 0


def test_reset_after_is_reset_in_rounded_up_at_any_instant_of_the_second() -> None:
    window = MinuteWindow()
    for second, requests, tokens in ((100, 1, 0), (103, 0, 50), (130, 2, 7)):
        window.advance(second)
        window.count(second, requests, tokens)
    for now in (130.0, 130.25, 131.999, 150.5, 159.0, 162.75, 189.5):
        second = int(now)
        window.advance(second)
        for series in (1, 2):
            assert window.reset_after(second, series) == math.ceil(window.reset_in(now, series)), (now, series)


def test_the_window_agrees_with_a_plain_list_of_seconds() -> None:
    rng = random.Random(7)
    window, counted = MinuteWindow(), []
    second = 0
    for _ in range(3000):
        second += rng.choice((0, 0, 0, 1, 2, 30, 61))
        requests, tokens = rng.choice((0, 1)), rng.choice((0, 0, 5, 300))
        window.advance(second)
        for count in (False, True):  # read before and after counting (the resets are remembered within a second)
            if count:
                window.count(second, requests, tokens)
                counted.append((second, requests, tokens))
            alive = [c for c in counted if c[0] > second - 60]
            assert (window.requests, window.tokens) == (sum(c[1] for c in alive), sum(c[2] for c in alive))
            for series in (1, 2):
                oldest = next((c[0] for c in alive if c[series]), None)
                assert window.reset_after(second, series) == (0 if oldest is None else oldest + 60 - second)


def test_the_rendered_headers_are_the_tightest_limits_as_pairs() -> None:
    clock = VirtualTime(1000.0)
    accounts = Accounts(clock, wall=VirtualTime(1.7e9))
    key = KeyRecord(id="k", name="k", hash="h", rpm=5, tpm=10_000, team="t")
    team = TeamRecord(name="t", rpm=50, tpm=2_000)
    first = accounts.admit(call(100), key, team)
    first.settle(done(150, 0.0))
    clock.advance(7.5)
    ticket = accounts.admit(call(100), key, team)
    prompt = call().facts.prompt_tokens(False)
    assert head_pairs(ticket.head) == [
        ("x-ratelimit-limit-requests", "5"), ("x-ratelimit-remaining-requests", "3"),  # the key's: 5 - 2
        ("x-ratelimit-reset-requests", "53s"),  # the first request leaves the window 60 s after it came
        ("x-ratelimit-limit-tokens", "2000"),  # the team's: 2000 - 150 used - this one's reservation
        ("x-ratelimit-remaining-tokens", str(2000 - 150 - (prompt + 100))), ("x-ratelimit-reset-tokens", "53s")]
    assert all(value.isprintable() and "\n" not in value for _, value in head_pairs(ticket.head))


def test_the_price_estimate_follows_a_new_routing_table() -> None:
    accounts = Accounts(VirtualTime(), wall=VirtualTime(1.7e9))
    key = KeyRecord(id="k", name="k", hash="h", budget=Budget(usd=100.0, period="1d"))
    dear = accounts.admit(call(1000), key, None)
    cheaper = Router.from_dict({"models": [{"name": "chat", "deployments": [
        {"id": "cheap", "provider": "openai", "model": "m", "api_base": "http://127.0.0.1:9/v1",
         "price": {"input_per_mtok": 1, "output_per_mtok": 2}}]}]})
    body = {"model": "chat", "messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 1000}
    cheap = accounts.admit(cheaper.call(Operation.CHAT, body), key, None)
    assert cheap.cost == pytest.approx(dear.cost / 10)


@pytest.mark.parametrize(("rpm", "tpm", "names"), [
    (5, None, ["limit-requests", "remaining-requests", "reset-requests"]),
    (None, 900, ["limit-tokens", "remaining-tokens", "reset-tokens"]),
    (None, None, []),
])
def test_a_key_with_one_kind_of_limit_or_none_gets_its_headers_only(rpm: int | None, tpm: int | None,
                                                                   names: list[str]) -> None:
    accounts = Accounts(VirtualTime(), wall=VirtualTime(1.7e9))
    key = KeyRecord(id="k", name="k", hash="h", rpm=rpm, tpm=tpm, max_parallel=3)
    ticket = accounts.admit(call(100), key, None)
    assert [name for name, _ in head_pairs(ticket.head)] == ["x-ratelimit-" + n for n in names]
    assert all(value.isdigit() or value.endswith("s") for _, value in head_pairs(ticket.head))
