"""Usage of keys and teams, and admission against their limits with reservation.

    admit ─► for the key and its team: max_parallel, rpm, tpm, budget   (429 on the first that is full)
          ─► count the request, reserve tokens (prompt estimate + max_tokens) and dollars (at the model's
             highest price), one more in flight
    settle(record)  when the answer completes: release the reservation, count the real tokens and cost
    release()       on a failure before any answer: release the reservation, count nothing

Admission rule: a request is let in while what is used plus what is reserved is
*below* the limit. So a burst of concurrent requests spends at most the limit
plus one request (the last one admitted); the same holds for tpm. Requests per
minute and tokens per minute are one :class:`~stellwerk.keys.minute.MinuteWindow`
per account (the router's clock); budgets are fixed periods on the wall clock
(:func:`~stellwerk.state.records.period_start`), seeded from the ledger at start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, NoReturn

from mypy_extensions import mypyc_attr

from stellwerk.errors import QuotaExceededError, RateLimitError
from stellwerk.http.messages import head_pairs
from stellwerk.state.records import PERIODS, KeyRecord, TeamRecord, period_start

from .minute import MinuteWindow

if TYPE_CHECKING:
    from stellwerk.pipeline.call import Call
    from stellwerk.telemetry.events import RequestFinished

__all__ = ["Account", "Accounts", "Ticket"]

Limits = KeyRecord | TeamRecord


class Account:
    """One key's or team's usage, and the limits it was last admitted under (bound by :meth:`Accounts.admit`)."""

    __slots__ = ("inflight", "limits", "parallel", "period", "period_end", "period_requests", "period_start",
                 "reserved_cost", "reserved_tokens", "rpm", "rpm_head", "spent", "tpm", "tpm_head", "usd", "window")

    def __init__(self) -> None:
        self.window = MinuteWindow()
        """Requests admitted and tokens used by completed answers in the last 60 s."""
        self.inflight = 0
        self.reserved_tokens = 0
        self.reserved_cost = 0.0
        self.period = "total"
        self.period_start = 0.0
        self.period_end = math.inf
        self.spent = 0.0
        self.period_requests = 0
        self.limits: Limits | None = None
        self.rpm: int | None = None
        self.tpm: int | None = None
        self.parallel: int | None = None
        self.usd: float | None = None
        self.rpm_head = ""
        """``x-ratelimit-limit-requests`` and the name of the next header, as wire text (rendered once per bind)."""
        self.tpm_head = ""

    def bind(self, limits: Limits) -> None:
        """Admit under ``limits`` from now on (the record as the keyring holds it now)."""
        self.limits = limits
        self.rpm, self.tpm, self.parallel = limits.rpm, limits.tpm, limits.max_parallel
        self.usd = limits.budget.usd if limits.budget is not None else None
        self.rpm_head = f"\r\nx-ratelimit-limit-requests: {limits.rpm}\r\nx-ratelimit-remaining-requests: "
        self.tpm_head = f"\r\nx-ratelimit-limit-tokens: {limits.tpm}\r\nx-ratelimit-remaining-tokens: "

    def roll(self, period: str, now: float) -> None:
        """Start a new budget period when ``now`` has left the current one (or the period changed)."""
        if period == self.period and self.period_start <= now < self.period_end:
            return
        start = period_start(period, now)
        if start != self.period_start or period != self.period:
            self.spent, self.period_requests = 0.0, 0
        length = PERIODS[period]
        self.period, self.period_start, self.period_end = period, start, start + length if length else math.inf


class _Group:
    """The accounts one key's requests count against (the key's and its team's), for one version of each."""

    __slots__ = ("accounts", "budgeted", "key", "team")

    def __init__(self, key: KeyRecord | None, team: TeamRecord | None, accounts: tuple[Account, ...]) -> None:
        self.key = key
        self.team = team
        self.accounts = accounts
        self.budgeted = any(a.usd is not None for a in accounts)


@mypyc_attr(allow_interpreted_subclasses=True)
class Ticket:
    """One admitted request's claim on its accounts; settled or released exactly once."""

    __slots__ = ("accounts", "clock", "cost", "done", "head", "tokens")

    def __init__(self, accounts: tuple[Account, ...], tokens: int, cost: float, head: str,
                 clock: Callable[[], float]) -> None:
        self.accounts = accounts
        self.tokens = tokens
        self.cost = cost
        self.head = head
        """``x-ratelimit-*`` of the tightest limits at admission, for the answer, as wire text (the reply's
        ``head``; :func:`~stellwerk.http.messages.head_pairs` reads it as pairs)."""
        self.clock = clock
        self.done = False

    def settle(self, record: RequestFinished) -> None:
        usage = record.usage  # the fields, not total_tokens: a property of an interpreted struct is a Python call
        self._close(usage.prompt_tokens + usage.completion_tokens, record.cost)

    def release(self) -> None:
        self._close(0, 0.0)

    def _close(self, tokens: int, cost: float) -> None:
        if self.done:
            return
        self.done = True
        second = int(self.clock()) if tokens else 0
        reserved, reserved_cost = self.tokens, self.cost
        for account in self.accounts:
            account.inflight -= 1
            account.reserved_tokens -= reserved
            account.reserved_cost -= reserved_cost
            if tokens:
                window = account.window
                if window.second != second:
                    window.advance(second)
                window.count(second, 0, tokens)
            account.spent += cost


class Accounts:
    """Accounts of keys (``key:<id>``) and teams (``team:<name>``). ``clock`` runs the minute windows (the
    router's clock); ``wall`` the budget periods (Unix time)."""

    def __init__(self, clock: Callable[[], float], *, wall: Callable[[], float], reserve_tokens: int = 1024) -> None:
        self._clock = clock
        self._wall = wall
        self.reserve_tokens = reserve_tokens
        """Output tokens reserved for a request that names no ``max_tokens``."""
        self._accounts: dict[str, Account] = {}
        self._groups: dict[str, _Group] = {}
        """By key id (``team:<name>`` for a team alone)."""
        self._prices: dict[str, tuple[float, float]] = {}
        """Highest input and output prices by model, of the table :attr:`_priced`."""
        self._priced: object = None

    def account(self, name: str) -> Account:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = Account()
        return account

    def usage(self, name: str, limits: Limits) -> tuple[int, float]:
        """Requests and dollars of ``name`` in its current budget period (``total`` without a budget)."""
        account = self.account(name)
        account.roll(limits.budget.period if limits.budget else "total", self._wall())
        return account.period_requests, account.spent

    def used(self, name: str) -> tuple[int, int]:
        """Requests admitted and tokens used by ``name`` in the last minute."""
        window = self.account(name).window
        window.advance(int(self._clock()))
        return window.requests, window.tokens

    def seed(self, name: str, period: str, start: float, requests: int, spent: float) -> None:
        """Usage from the ledger at start (the period beginning at ``start``)."""
        account = self.account(name)
        length = PERIODS[period]
        account.period, account.period_start, account.period_requests, account.spent = period, start, requests, spent
        account.period_end = start + length if length else math.inf

    def admit(self, call: Call, key: KeyRecord | None, team: TeamRecord | None) -> Ticket:
        """Admit ``call`` for ``key`` and ``team`` (not both None), or raise the 429 of the fullest limit.

        One pass, one reading of each clock: each limit's usage is read once, checked, and reused for the
        ``x-ratelimit-*`` headers. The accounts of a key and its team, with their limits, are looked up once
        per version of the records.
        """
        name = key.id if key is not None else "team:" + team.name  # type: ignore[union-attr]
        group = self._groups.get(name)
        if group is None or group.key is not key or group.team is not team:
            group = self._group(name, key, team)
        accounts = group.accounts
        facts = call.facts
        output = facts.max_output_tokens
        if output is None:
            output = self.reserve_tokens
        tokens = facts.prompt_tokens(False) + output
        now = self._clock()
        second = int(now)
        wall = self._wall() if group.budgeted else 0.0
        cost = 0.0
        requests: Account | None = None
        by_tokens: Account | None = None
        requests_left = tokens_left = 0
        for account in accounts:
            window = account.window
            if window.second != second:
                window.advance(second)
            parallel = account.parallel
            if parallel is not None and account.inflight >= parallel:
                self._refuse("parallel", account, now, wall, accounts)
            rpm = account.rpm
            if rpm is not None:
                left = rpm - window.requests - 1
                if left < 0:
                    self._refuse("rpm", account, now, wall, accounts)
                if requests is None or left < requests_left:
                    requests, requests_left = account, left
            tpm = account.tpm
            if tpm is not None:
                left = tpm - window.tokens - account.reserved_tokens
                if left <= 0:
                    self._refuse("tpm", account, now, wall, accounts)
                left -= tokens
                if by_tokens is None or left < tokens_left:
                    by_tokens, tokens_left = account, left
            usd = account.usd
            if usd is not None:
                if not account.period_start <= wall < account.period_end:
                    account.roll(account.period, wall)
                if account.spent + account.reserved_cost >= usd:
                    self._refuse("budget", account, now, wall, accounts)
                if not cost:
                    cost = self._estimate(call, tokens - output, output)
        for account in accounts:
            account.window.count(second, 1, 0)
            account.inflight += 1
            account.reserved_tokens += tokens
            account.reserved_cost += cost
            account.period_requests += 1
        return Ticket(accounts, tokens, cost, _head(requests, requests_left, by_tokens, tokens_left, second),
                      self._clock)

    def _group(self, name: str, key: KeyRecord | None, team: TeamRecord | None) -> _Group:
        """The accounts of ``key`` and ``team`` bound to these versions of their records (remembered as ``name``)."""
        wall = self._wall()
        named: list[tuple[str, Limits]] = []
        if key is not None:
            named.append(("key:" + key.id, key))
        if team is not None:
            named.append(("team:" + team.name, team))
        held = []
        for account_name, limits in named:
            account = self.account(account_name)
            account.bind(limits)
            account.roll(limits.budget.period if limits.budget is not None else "total", wall)
            held.append(account)
        group = _Group(key, team, tuple(held))
        if len(self._groups) > 65536:
            self._groups.clear()
        self._groups[name] = group
        return group

    def _refuse(self, limit: str, account: Account, now: float, wall: float,
                accounts: Sequence[Account]) -> NoReturn:
        """Raise the 429 of ``limit`` (``parallel``, ``rpm``, ``tpm`` or ``budget``) of ``account``'s limits."""
        limits = account.limits
        assert limits is not None
        scope = "key" if isinstance(limits, KeyRecord) else "team"
        who = f"key {limits.id}" if isinstance(limits, KeyRecord) else f"team {limits.name}"
        headers = head_pairs(_current_head(accounts, now))
        if limit == "parallel":
            raise RateLimitError(f"Too many requests in flight for {who}: at most {limits.max_parallel} at once "
                                 "(rate_limit_exceeded).", [("retry-after", "1"), *headers], scope)
        if limit == "rpm":
            raise RateLimitError(f"Rate limit reached for {who}: {limits.rpm} requests per minute "
                                 "(rate_limit_exceeded).", [_retry(account.window.reset_in(now, 1)), *headers], scope)
        if limit == "tpm":
            raise RateLimitError(f"Rate limit reached for {who}: {limits.tpm} tokens per minute "
                                 "(rate_limit_exceeded).", [_retry(account.window.reset_in(now, 2)), *headers], scope)
        budget = limits.budget
        assert budget is not None
        retry = [_retry(account.period_end - wall)] if account.period_end != math.inf else []
        raise QuotaExceededError(f"The budget of {who} is spent: ${budget.usd:g} per {budget.period} "
                                 "(insufficient_quota).", retry, scope)

    def _estimate(self, call: Call, prompt: int, output: int) -> float:
        """Dollars at the highest prices among the model's deployments (the answer may come from any)."""
        table = call.table
        if table is not self._priced:  # a new routing table: prices may have changed
            self._prices, self._priced = {}, table
        prices = self._prices.get(call.model)
        if prices is None:
            deployments = table.model(call.model).config.deployments
            prices = (max(d.price.input_per_mtok for d in deployments), max(d.price.output_per_mtok for d in deployments))
            if len(self._prices) > 4096:
                self._prices.clear()
            self._prices[call.model] = prices
        return (prompt * prices[0] + output * prices[1]) / 1e6



def _current_head(accounts: Sequence[Account], now: float) -> str:
    """``x-ratelimit-*`` of the tightest request limit and the tightest token limit, as they stand."""
    requests: Account | None = None
    by_tokens: Account | None = None
    requests_left = tokens_left = 0
    for account in accounts:
        if account.rpm is not None:
            left = account.rpm - account.window.requests
            if requests is None or left < requests_left:
                requests, requests_left = account, left
        if account.tpm is not None:
            left = account.tpm - account.window.tokens - account.reserved_tokens
            if by_tokens is None or left < tokens_left:
                by_tokens, tokens_left = account, left
    return _head(requests, requests_left, by_tokens, tokens_left, int(now))


def _head(requests: Account | None, requests_left: int, by_tokens: Account | None, tokens_left: int,
          second: int) -> str:
    """The ``x-ratelimit-*`` headers of the account with the tightest rpm and the one with the tightest tpm, at
    an instant in ``second``, as wire text: one string built in one go, which the server writes as it is (six
    header pairs cost about 8k instructions more to build, merge and encode on every answer)."""
    if requests is None:
        return "" if by_tokens is None else _tokens_head(by_tokens, tokens_left, second)
    if by_tokens is None:
        return _requests_head(requests, requests_left, second)
    return (f"{requests.rpm_head}{_left(requests_left)}\r\nx-ratelimit-reset-requests: "  # both: one string built
            f"{_duration(requests.window.reset_after(second, 1))}{by_tokens.tpm_head}{_left(tokens_left)}"
            f"\r\nx-ratelimit-reset-tokens: {_duration(by_tokens.window.reset_after(second, 2))}")


def _requests_head(account: Account, left: int, second: int) -> str:
    return (f"{account.rpm_head}{_left(left)}\r\nx-ratelimit-reset-requests: "
            f"{_duration(account.window.reset_after(second, 1))}")


def _tokens_head(account: Account, left: int, second: int) -> str:
    return (f"{account.tpm_head}{_left(left)}\r\nx-ratelimit-reset-tokens: "
            f"{_duration(account.window.reset_after(second, 2))}")


def _left(n: int) -> str:
    return str(n) if n > 0 else "0"


def _retry(seconds: float) -> tuple[str, str]:
    return ("retry-after", str(max(1, math.ceil(seconds))))


_SECONDS: Final = tuple(f"{s}s" if s < 60 else "1m0s" for s in range(61))


def _duration(whole: int) -> str:
    """OpenAI's form of a reset time in whole seconds: ``0s``, ``12s``, ``1m0s``."""
    return _SECONDS[whole] if whole <= 60 else f"{whole // 60}m{whole % 60}s"
