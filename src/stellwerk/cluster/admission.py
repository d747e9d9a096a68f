"""The limits stage's shared path: the local admission now, the accounts' global windows with the deployment.

    Redis up:    local admit (max_parallel, budgets, per-replica headers) ─► the key's and team's accounts
                 with rpm/tpm become the request's Pending claim (a context variable for the pipeline below)
                 ─► the attempt loop claims them together with the deployment (:meth:`SharedLimits.claim`:
                 from the leases in hand, or in one round trip); a full account ─► 429, the local ticket
                 released
                 ─► no attempt was made (a cache hit): the accounts are counted after the fact
    Redis down:  local admit against this replica's share of the limits (:meth:`SharedLimits.local_view`)
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from stellwerk.errors import RateLimitError
from stellwerk.keys.accounts import Accounts, Ticket
from stellwerk.state.records import KeyRecord, TeamRecord

from .limits import Refused, SharedLimits
from .rounds import Account

if TYPE_CHECKING:
    from stellwerk.pipeline.call import Call

__all__ = ["PENDING", "Pending", "SharedTicket", "admit_shared", "close_claim"]


class Pending:
    """The shared accounts of one request: not yet counted (``ats`` None), or per account the second it was
    counted in (-1: not counted: Redis failed, the local admission stands, or the request was refused)."""

    __slots__ = ("accounts", "ats", "claiming", "records", "reserves")

    def __init__(self, records: list[KeyRecord | TeamRecord], accounts: list[Account], tokens: int) -> None:
        self.records = records
        self.accounts = accounts
        self.reserves = [tokens] * len(accounts)
        """The tokens reserved on each account."""
        self.ats: list[int] | None = None
        self.claiming = False

    def refusal(self, refused: Refused) -> RateLimitError:
        full = self.records[refused.index]
        who = f"key {full.id}" if isinstance(full, KeyRecord) else f"team {full.name}"
        scope = "key" if isinstance(full, KeyRecord) else "team"
        if full.rpm is not None and refused.requests >= full.rpm:
            what = f"{full.rpm} requests per minute"
        else:
            what = f"{full.tpm} tokens per minute"
        return RateLimitError(f"Rate limit reached for {who}: {what} across all replicas (rate_limit_exceeded).",
                              [("retry-after", "1")], scope)


PENDING: ContextVar[Pending | None] = ContextVar("stellwerk_pending_claim", default=None)
"""The pending claim of the request being handled (set by the limits stage, read by the attempt loop)."""


class SharedTicket(Ticket):
    """A ticket whose tokens are also reconciled in the shared windows when it closes."""

    __slots__ = ("pending", "shared")

    def __init__(self, ticket: Ticket, shared: SharedLimits, pending: Pending) -> None:
        super().__init__(ticket.accounts, ticket.tokens, ticket.cost, ticket.head, ticket.clock)
        self.shared = shared
        self.pending = pending

    def _close(self, tokens: int, cost: float) -> None:
        ats = self.pending.ats
        if not self.done and ats is not None and tokens != self.tokens:
            leases, delta, accounts = self.shared.leases, tokens - self.tokens, self.pending.accounts
            for i, at in enumerate(ats):
                if at >= 0:
                    leases.settle(accounts[i].key, at, 0, delta)
        super()._close(tokens, cost)


def admit_shared(shared: SharedLimits, accounts: Accounts, call: Call, key: KeyRecord | None,
                 team: TeamRecord | None) -> tuple[Ticket, Token[Pending | None] | None]:
    """The local ticket, and (Redis up, some account limited) the context token of the pending claim, to be
    handed to :func:`close_claim` when the request has passed the pipeline below."""
    if not shared.up:
        return accounts.admit(call, shared.local_view(key) if key is not None else None,
                              shared.local_view(team) if team is not None else None), None
    ticket = accounts.admit(call, key, team)
    limited: list[KeyRecord | TeamRecord] = [r for r in (key, team) if r is not None and (r.rpm or r.tpm)]
    if not limited:
        return ticket, None
    rounds = shared.rounds
    pending = Pending(limited, [rounds.account(f"key:{r.id}" if isinstance(r, KeyRecord) else f"team:{r.name}",
                                               r.rpm, r.tpm) for r in limited], ticket.tokens)
    return SharedTicket(ticket, shared, pending), PENDING.set(pending)


def close_claim(shared: SharedLimits, token: Token[Pending | None]) -> Awaitable[None] | None:
    """After the pipeline: what counts the accounts no attempt claimed (a middleware answered), if any."""
    pending = token.var.get()
    PENDING.reset(token)
    if pending is not None and pending.ats is None:
        return _count(shared, pending)
    return None


async def _count(shared: SharedLimits, pending: Pending) -> None:
    ats, full, _, _ = await shared.leases.draw(pending.accounts, pending.reserves)
    pending.ats = [-1] * len(ats) if full > 0 else ats
