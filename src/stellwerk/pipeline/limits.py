"""The limits stage: rpm, tpm, max_parallel and budgets of the caller's key and team, reserved at admission.

    admit (429 rate_limit_exceeded / insufficient_quota, with retry-after and x-ratelimit-*)
      ─► next ─► a complete answer: settle now; a stream: reply.on_complete(settle)
            │                                real tokens and cost replace the reservation
            └─► an exception                 the reservation is released

With ``shared`` (:class:`~stellwerk.cluster.limits.SharedLimits`, ``server.redis``), rpm and tpm are
also checked and counted across every replica, together with the deployment's in the attempt loop: from
this replica's lease of each account when it has one, else in one round trip that brings a new lease (see
:mod:`stellwerk.cluster.admission` and :mod:`stellwerk.cluster.leases`); while Redis is down the local
admission enforces this replica's share of them instead.

The reply carries the ``x-ratelimit-*`` headers of the tightest limits at admission, rendered once as wire
text in ``reply.head`` (the gateway writes it as it is; the library's ``Router.chat`` turns it into pairs).
A call without a principal (auth off) passes untouched. The arithmetic is in :mod:`stellwerk.keys.accounts`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from stellwerk.keys.accounts import Accounts
from stellwerk.keys.keyring import Keyring

from .call import Call
from .chain import Link, Stage
from .reply import Reply, is_result

if TYPE_CHECKING:
    from stellwerk.cluster.limits import SharedLimits

__all__ = ["Limits"]

log = logging.getLogger("stellwerk.pipeline")


class Limits(Stage):
    """Middleware of the ``limits`` stage."""

    def __init__(self, keyring: Keyring, accounts: Accounts, shared: SharedLimits | None = None) -> None:
        self.keyring = keyring
        self.accounts = accounts
        self.shared = shared
        if shared is not None:
            from stellwerk.cluster.admission import admit_shared, close_claim

            self._admit_shared, self._close_claim = admit_shared, close_claim

    async def handle(self, call: Call, after: Link, /) -> Reply:
        principal = call.principal
        if principal is None:
            return await after.handle(call)
        team_name = principal.team
        key = self.keyring.key(principal.key_id)
        team = self.keyring.team(team_name) if team_name is not None else None
        if key is None and team is None:
            return await after.handle(call)
        shared = self.shared
        if shared is None:
            ticket = self.accounts.admit(call, key, team)
            claim = None
        else:
            ticket, claim = self._admit_shared(shared, self.accounts, call, key, team)
        try:
            reply = await after.handle(call)
        except BaseException:
            if claim is not None:
                claim.var.reset(claim)
            ticket.release()
            raise
        if claim is not None and shared is not None:
            counting = self._close_claim(shared, claim)
            if counting is not None:
                await counting
        reply.head += ticket.head
        if is_result(reply):  # complete: settled now (as on_complete would, without calling into the struct)
            record = reply.record
            if record is None:  # a middleware's own answer
                ticket.release()
            else:
                try:  # as a completion hook would be run (run_hook), without a bound method and a Python call
                    ticket.settle(record)
                except Exception:
                    log.exception("settling the limits of request %s failed", call.request_id)
        else:
            reply.on_complete(ticket.settle)
        return reply
