"""Leases: allowances of requests and tokens granted by Redis out of the global windows, spent here.

    draw(accounts, needs)
      ├─ every account's allowance in hand has ≥ 1 request and ≥ need tokens ─► taken here: no round trip
      └─ else the accounts lacking ask for a lease in the next round (:mod:`.rounds`); what is left of
         their old allowance goes back with the ask
           ├─ granted ─► the request takes its own share; the rest is the allowance in hand for LEASE s
           └─ refused ─► the local takes go back (then one more local try: a grant that arrived meanwhile)
    settle(key, at, requests, tokens)   a correction (real tokens minus reserved, a refusal's take given
                                        back): into the allowance in hand if counted in the same second,
                                        else to Redis with the next round
    expiry (a sweep every SWEEP s), changed limits, replacement, shutdown ─► the unused rest goes back to
                                        Redis, to the second it was counted in

The ask is ``want`` requests and ``want * need`` tokens: ``want`` is this replica's use of the account
in its last second of use (or in the current one, if more; 1..``MAX_ASK``), or 1 when it has no such
second in the window or an ask for more is in flight already. Redis grants less near the limits
(``rest / 2 * replicas``, :mod:`.scripts`).

Exactness: Redis counts what it grants and never grants past a limit, so the replicas together never
admit more than the limit (tpm: at most one request's reservation past it, as without leases). They can
admit less while a replica holds an allowance it does not use: near the limit at most ``rest / 2n`` per
replica (1 request once fewer than ``4n`` are left), for at most LEASE + SWEEP seconds, after which it is
given back and the others can take it. A burst on an account unused for a minute asks exactly, so it is
admitted exactly up to the limit. An allowance granted before Redis was lost is spent until it
expires, never given back (Redis may have restarted empty: giving back could over-admit).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .rounds import Account, Rounds

__all__ = ["LEASE", "MAX_ASK", "Allowance", "Leases"]

LEASE = 1.0
"""Seconds an allowance may be spent after it was granted (by the cluster's wall clock)."""
SWEEP = LEASE / 4
"""Seconds between two sweeps for expired allowances (while any account is held)."""
MAX_ASK = 64
"""Requests asked for at most in one lease."""
_HELD = 4096
"""Accounts with allowances at most (all are given back when full)."""
_WINDOW = 60
"""Seconds of a window: use older than that says nothing about the next lease."""


class Allowance:
    """What this replica may still admit on one account without asking: ``requests`` and ``tokens``,
    counted in second ``at`` by Redis connection ``epoch`` under limits ``rpm``/``tpm``, until ``until``;
    and this replica's use of the account (``used`` in ``second``, ``last`` in its second of use before)."""

    __slots__ = ("asking", "at", "epoch", "last", "requests", "rpm", "second", "tokens", "tpm", "until", "used")

    def __init__(self) -> None:
        self.requests = 0
        self.tokens = 0
        self.at = 0
        self.until = 0.0
        self.epoch = 0
        self.rpm: int | None = None
        self.tpm: int | None = None
        self.second = 0
        self.used = 0
        self.last = 0
        self.asking = False
        """An ask for more than one request is in flight."""

    def note(self, second: int) -> None:
        """One request admitted in ``second``."""
        if second > self.second:
            self.last = self.used if second - self.second < _WINDOW else 0
            self.second, self.used = second, 0
        self.used += 1

    def want(self, second: int) -> int:
        """Requests to ask for in ``second``: 1 while another ask is in flight or before this replica has a
        second of use in the window behind it, else its use in its last second of use (or in this one, if
        more), at most MAX_ASK."""
        if self.asking:
            return 1
        if second > self.second:
            last, used = (self.used if second - self.second < _WINDOW else 0), 0
        else:
            last, used = self.last, self.used
        return min(MAX_ASK, max(last, used)) if last else 1

    def fits(self, account: Account, epoch: int, now: float) -> bool:
        """Granted on this connection, under ``account``'s limits, and not expired."""
        return self.until > now and self.epoch == epoch and self.rpm == account.rpm and self.tpm == account.tpm


class Leases:
    """This replica's allowances, drawn in ``rounds``."""

    def __init__(self, rounds: Rounds) -> None:
        self.rounds = rounds
        self.cluster = rounds.cluster
        self._held: dict[bytes, Allowance] = {}
        self._lent: dict[bytes, Allowance] = {}
        """The allowances that may hold something (current ones), for the sweep."""
        self._timer: asyncio.TimerHandle | None = None

    def allowance(self, key: bytes) -> Allowance:
        held = self._held
        allowance = held.get(key)
        if allowance is None:
            if len(held) >= _HELD:  # forget every account's use (what they hold goes back)
                for old, kept in list(self._lent.items()):
                    self._give_back(old, kept)
                held.clear()
            allowance = held[key] = Allowance()
        return allowance

    # -- taking ---------------------------------------------------------------------------------------
    def take(self, accounts: Sequence[Account], needs: Sequence[int], now: float) -> list[int]:
        """One request and ``needs[i]`` tokens from each account's allowance that has them; per account the
        second it was counted in, or -1 (lacking: nothing taken there)."""
        held, epoch, second = self._held, self.cluster.epoch, int(now)
        ats: list[int] = []
        for i, account in enumerate(accounts):  # (not zip: a call per request in compiled code)
            need = needs[i]
            allowance = held.get(account.key)
            if (allowance is not None and allowance.requests >= 1 and allowance.tokens >= need
                    and allowance.fits(account, epoch, now)):
                allowance.requests -= 1
                allowance.tokens -= need
                allowance.note(second)
                ats.append(allowance.at)
            else:
                ats.append(-1)
        return ats

    async def draw(self, accounts: Sequence[Account], needs: Sequence[int]) -> tuple[list[int], int, int, int]:
        """Take one request and its tokens on every account: ``(ats, full, requests, tokens)``. ``ats``: the
        second each account counted it in (-1: not counted). ``full``: 0 admitted; i + 1: account i is full
        (its requests and tokens in the window; nothing taken); -1: Redis could not answer for the accounts
        lacking (those taken here stand)."""
        now = self.cluster.wall()
        ats = self.take(accounts, needs, now)
        if -1 not in ats:
            return ats, 0, 0, 0
        return await self._ask(accounts, needs, ats, int(now))

    async def _ask(self, accounts: Sequence[Account], needs: Sequence[int], ats: list[int],
                   second: int) -> tuple[list[int], int, int, int]:
        lacking = [i for i, at in enumerate(ats) if at < 0]
        ask = _Ask(self, [accounts[i] for i in lacking], [needs[i] for i in lacking])
        for account in ask.accounts:
            allowance = self.allowance(account.key)
            self._give_back(account.key, allowance)  # too little to take from: back with the ask
            want = allowance.want(second)
            if want > 1:
                allowance.asking = True
            ask.allowances.append(allowance)
            ask.wants.append(want)
        if not self.rounds.join(ask.accounts, ask.wants, ask.needs, ask.answer):
            ask.answer(-1, None)
            return ats, -1, 0, 0
        at, answer = await ask.waiter
        if at < 0:
            return ats, -1, 0, 0
        if isinstance(answer, list) and answer[0]:
            self.put_back(accounts, needs, ats)
            again = self.take(accounts, needs, self.cluster.wall())  # a grant of another request meanwhile
            if -1 not in again:
                return again, 0, 0, 0
            self.put_back(accounts, needs, again)
            return [-1] * len(ats), lacking[answer[0] - 1] + 1, answer[1], answer[2]
        for i in lacking:
            ats[i] = at
        return ats, 0, 0, 0

    def keep(self, account: Account, allowance: Allowance, at: int, requests: int, tokens: int) -> None:
        """Granted beyond the request's own: ``requests`` and ``tokens`` counted in second ``at``."""
        allowance.note(at)
        if requests <= 0 and tokens <= 0:
            return
        now, epoch = self.cluster.wall(), self.cluster.epoch
        if not allowance.fits(account, epoch, now) or allowance.at != at:
            self._give_back(account.key, allowance)  # replaced
            allowance.at, allowance.epoch, allowance.rpm, allowance.tpm = at, epoch, account.rpm, account.tpm
        allowance.requests += requests
        allowance.tokens += tokens
        allowance.until = now + LEASE
        self._lent[account.key] = allowance
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SWEEP, self.sweep)

    # -- giving back ----------------------------------------------------------------------------------
    def settle(self, key: bytes, at: int, requests: int, tokens: int) -> None:
        """``requests`` and ``tokens`` more used (negative: given back) of what was counted in second ``at``
        (-1: whichever the allowance in hand was): into that allowance while it is current and was counted
        in the same second (and covers an increase), else to Redis with the next round."""
        allowance = self._held.get(key)
        now = self.cluster.wall()
        if (allowance is not None and allowance.until > now and allowance.epoch == self.cluster.epoch
                and (at < 0 or allowance.at == at) and allowance.requests >= requests and allowance.tokens >= tokens):
            allowance.requests -= requests
            allowance.tokens -= tokens
        else:
            self.rounds.reconcile(key, at if at >= 0 else int(now), requests, tokens)

    def put_back(self, accounts: Sequence[Account], needs: Sequence[int], ats: Sequence[int]) -> None:
        """Give back what :meth:`take` took (``ats``: where it was counted; -1: nothing taken there)."""
        for i, at in enumerate(ats):
            if at >= 0:
                self.settle(accounts[i].key, at, -1, -needs[i])

    def _give_back(self, key: bytes, allowance: Allowance) -> None:
        """The unused rest of ``allowance`` back to Redis (not across a lost connection: dropped)."""
        if (allowance.requests or allowance.tokens) and allowance.epoch == self.cluster.epoch:
            self.rounds.reconcile(key, allowance.at, -allowance.requests, -allowance.tokens)
        allowance.requests = allowance.tokens = 0
        allowance.until = 0.0
        self._lent.pop(key, None)

    def sweep(self) -> None:
        """Give back the expired allowances (every SWEEP s while some are held)."""
        self._timer = None
        now = self.cluster.wall()
        for key, allowance in list(self._lent.items()):
            if allowance.until <= now:
                self._give_back(key, allowance)
        if self._lent:
            self._timer = asyncio.get_running_loop().call_later(SWEEP, self.sweep)

    async def close(self) -> None:
        """This replica shuts down: every unused allowance back to Redis, and wait for the reply."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for key, allowance in list(self._lent.items()):
            self._give_back(key, allowance)
        self._held.clear()
        await self.rounds.flush()


class _Ask:
    """One request's ask for leases on the accounts it lacks; its answer keeps the grants even if the
    request was cancelled meanwhile."""

    __slots__ = ("accounts", "allowances", "leases", "needs", "waiter", "wants")

    def __init__(self, leases: Leases, accounts: list[Account], needs: list[int]) -> None:
        self.leases = leases
        self.accounts = accounts
        self.needs = needs
        self.wants: list[int] = []
        self.allowances: list[Allowance] = []
        self.waiter: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()

    def answer(self, at: int, reply: Any) -> None:
        wants, needs = self.wants, self.needs
        for j, allowance in enumerate(self.allowances):
            if wants[j] > 1:
                allowance.asking = False
        if at >= 0 and not (isinstance(reply, list) and reply[0]):
            for j, account in enumerate(self.accounts):
                want, need = wants[j], needs[j]
                granted, tokens = (reply[2 * j + 1], reply[2 * j + 2]) if isinstance(reply, list) else (want, want * need)
                self.leases.keep(account, self.allowances[j], at, granted - 1, tokens - need)
        if not self.waiter.done():
            self.waiter.set_result((at, reply))
