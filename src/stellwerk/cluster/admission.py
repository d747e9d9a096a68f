"""The limits stage's shared path: the local admission, then the accounts' global windows in one round trip.

    Redis up:    local admit (max_parallel, budgets, per-replica headers) ─► ADMIT script for the key's
                 and team's rpm/tpm ─► refused: local ticket released, 429 naming the full account
    Redis down:  local admit against this replica's share of the limits (:meth:`SharedLimits.local_view`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stellwerk.errors import RateLimitError
from stellwerk.keys.accounts import Accounts, Ticket
from stellwerk.state.records import KeyRecord, TeamRecord

from .limits import SharedLimits

if TYPE_CHECKING:
    from stellwerk.pipeline.call import Call

__all__ = ["SharedTicket", "admit_shared"]


class SharedTicket(Ticket):
    """A ticket whose tokens are also reconciled in the shared windows when it closes."""

    __slots__ = ("at", "names", "shared")

    def __init__(self, ticket: Ticket, shared: SharedLimits, names: list[str], at: int) -> None:
        super().__init__(ticket.accounts, ticket.tokens, ticket.cost, ticket.headers, ticket.clock)
        self.shared = shared
        self.names = names
        self.at = at

    def _close(self, tokens: int, cost: float) -> None:
        if not self.done:
            self.shared.reconcile(self.names, self.at, tokens - self.tokens)
        super()._close(tokens, cost)


async def admit_shared(shared: SharedLimits, accounts: Accounts, call: Call, key: KeyRecord | None,
                       team: TeamRecord | None) -> Ticket:
    if not shared.up:
        return accounts.admit(call, shared.local_view(key) if key is not None else None,
                              shared.local_view(team) if team is not None else None)
    ticket = accounts.admit(call, key, team)
    limited: list[KeyRecord | TeamRecord] = [r for r in (key, team) if r is not None and (r.rpm or r.tpm)]
    if not limited:
        return ticket
    names = [f"key:{r.id}" if isinstance(r, KeyRecord) else f"team:{r.name}" for r in limited]
    result = await shared.admit_accounts([(n, r.rpm, r.tpm) for n, r in zip(names, limited, strict=True)],
                                         ticket.tokens)
    if result is None:  # Redis failed just now: the local admission stands
        return ticket
    at, refused = result
    if refused is None:
        return SharedTicket(ticket, shared, names, at)
    ticket.release()
    full = limited[refused.index]
    who = f"key {full.id}" if isinstance(full, KeyRecord) else f"team {full.name}"
    scope = "key" if isinstance(full, KeyRecord) else "team"
    if full.rpm is not None and refused.requests >= full.rpm:
        what = f"{full.rpm} requests per minute"
    else:
        what = f"{full.tpm} tokens per minute"
    raise RateLimitError(f"Rate limit reached for {who}: {what} across all replicas (rate_limit_exceeded).",
                         [("retry-after", "1"), *ticket.headers], scope)
