"""Admissions and reconciliations travel to Redis in rounds: one ADMIT script call, one write, one reply.

    join(accounts, wants, needs, answer) ─► the next round ─► no round in flight: the round goes now
                                                  └─► one in flight: it goes when that one's reply arrives
    reconcile(key, at, requests, tokens) ─► summed per account and second ─► rides with the next round
                                                                              (or goes alone after FLUSH_DELAY)
    a round's reply ─► each admission's ``answer(second, its answer)``, in the order they joined

An admission asks each of its accounts for a lease (:mod:`.leases`): ``want`` requests and ``want * need``
tokens, where ``need`` is the request's own reservation; the script grants less near the limits
(:mod:`.scripts`). Only requests that find no allowance in hand come here, so most requests make no round
trip at all; those that do share a round with whatever arrived while the previous one was in flight (one
write, one read, one script call), and so do the reconciliations (leases given back, tokens corrected).
Each admission waits at most for the round in flight plus its own. Bounded: a round takes at most
``MAX_ADMISSIONS`` admissions and ``MAX_RECONCILIATIONS`` reconciliations (more go in a round of their own
at once); every round has the connection's deadline (:class:`~.resp.RespConnection`).

Everything is encoded once where it can be: an account's key and limits when first seen, small integers
from a bounded table, the script's command prefix with the script (:class:`~.scripts.Script`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .node import Cluster
from .resp import ConnectionLost, RespError, bulk
from .scripts import ADMIT

__all__ = ["Account", "Answer", "Round", "Rounds"]

FLUSH_DELAY = 0.05
"""Seconds a reconciliation waits at most for an admission to ride with."""
MAX_ADMISSIONS = 256
"""Admissions per round at most."""
MAX_RECONCILIATIONS = 1024
"""Reconciliations (accounts and seconds) waiting at most; more go out at once."""
_CACHE = 4096
"""Entries of the encoding caches at most (cleared when full)."""

Answer = Callable[[int, Any], None]
"""Told an admission's outcome: ``(second, 0)`` it got what it asked for, ``(second, [0, gr, gt, ...])``
the grants of its accounts, ``(second, [i, R, T])`` its account i (from 1) was full (nothing counted), or
``(-1, None)``: Redis did not answer. Called from the reply's callback: it must not raise."""


class Account:
    """A shared window (``P w:<name>``) with its limits, encoded: the key, and rpm and tpm (0: none)."""

    __slots__ = ("key", "limits", "name", "rpm", "tpm")

    def __init__(self, name: str, rpm: int | None, tpm: int | None, key: bytes) -> None:
        self.name = name
        self.rpm = rpm
        self.tpm = tpm
        self.key = bulk(key)
        self.limits = bulk(b"%d" % (rpm or 0)) + bulk(b"%d" % (tpm or 0))


class Round:
    """The admissions of one ADMIT call: their keys and arguments, encoded, and whom to tell each outcome;
    ``done`` (made on demand) learns when the reply arrived."""

    __slots__ = ("answers", "argc", "args", "body", "done", "keys")

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.keys: list[bytes] = []
        self.args: list[bytes] = []
        self.argc = 0
        """Arguments in ``args`` (an account's limits are two in one piece)."""
        self.body = b""
        """The encoded command after the script (kept for a retry with EVAL)."""
        self.done: asyncio.Future[None] | None = None

    def answer(self, at: int, reply: Any) -> None:
        answers = self.answers
        if isinstance(reply, list):
            for i, told in enumerate(answers):
                told(at, reply[i])
        else:
            for told in answers:
                told(at, reply)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


class Rounds:
    """This replica's rounds on ``cluster``'s command connection."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.sent = 0
        """Rounds written (round trips made)."""
        self._next: Round | None = None
        self._flying = 0
        """Rounds written and not answered yet."""
        self._reconciled: dict[tuple[bytes, int], tuple[int, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._ints: dict[int, bytes] = {}
        self._accounts: dict[str, Account] = {}

    def account(self, name: str, rpm: int | None, tpm: int | None) -> Account:
        """The account ``name`` with these limits (cached: a lookup per request, not an encoding)."""
        account = self._accounts.get(name)
        if account is None or account.rpm != rpm or account.tpm != tpm:
            if len(self._accounts) >= _CACHE:
                self._accounts.clear()
            account = self._accounts[name] = Account(name, rpm, tpm, self.cluster.key("w:" + name).encode())
        return account

    def encode_int(self, value: int) -> bytes:
        """``value`` as a bulk string."""
        encoded = self._ints.get(value)
        if encoded is None:
            if len(self._ints) >= _CACHE:
                self._ints.clear()
            encoded = self._ints[value] = bulk(b"%d" % value)
        return encoded

    # -- admissions -----------------------------------------------------------------------------------
    def join(self, accounts: Sequence[Account], wants: Sequence[int], needs: Sequence[int], answer: Answer) -> bool:
        """Add one admission to the next round: on each account ``wants[i]`` requests and ``wants[i] *
        needs[i]`` tokens asked for, ``needs[i]`` the request's own; ``answer`` is told the outcome. False
        (and nothing told) when Redis is down."""
        if not self.cluster.up:
            return False
        rnd = self._next
        if rnd is None:
            rnd = self._next = Round()
        rnd.answers.append(answer)
        keys, args, encode = rnd.keys, rnd.args, self.encode_int
        args.append(encode(len(accounts)))
        rnd.argc += 1 + 4 * len(accounts)
        for account, want, need in zip(accounts, wants, needs, strict=True):
            keys.append(account.key)
            args.append(account.limits)
            args.append(encode(want))
            args.append(encode(need))
        if not self._flying or len(rnd.answers) >= MAX_ADMISSIONS:
            self._send()
        return True

    # -- reconciliations ------------------------------------------------------------------------------
    def reconcile(self, key: bytes, at: int, requests: int, tokens: int) -> None:
        """Add ``requests`` and ``tokens`` to second ``at`` of the account whose key is ``key``
        (:attr:`Account.key`), with the next round; lost while Redis is down."""
        if not (requests or tokens) or not self.cluster.up:
            return
        slot = (key, at)
        pending = self._reconciled
        before = pending.get(slot)
        pending[slot] = (requests, tokens) if before is None else (before[0] + requests, before[1] + tokens)
        if len(pending) >= MAX_RECONCILIATIONS:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._due)

    def _due(self) -> None:
        self._timer = None
        if self._reconciled:
            if self._flying:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._due)
            else:
                self._send()

    async def flush(self) -> None:
        """Send the reconciliations waiting now and wait for their reply (a replica shutting down)."""
        if not self._reconciled or not self.cluster.up:
            return
        rnd = self._next
        if rnd is None:
            rnd = self._next = Round()
        done = rnd.done = asyncio.get_running_loop().create_future()
        self._send()
        await done

    # -- the wire -------------------------------------------------------------------------------------
    def _send(self) -> None:
        rnd, self._next = self._next, None
        if rnd is None:
            rnd = Round()
        cluster = self.cluster
        conn = cluster.connection
        if conn is None:
            self._reconciled.clear()
            rnd.answer(-1, None)
            return
        now = int(cluster.wall())
        encode, reconciled = self.encode_int, self._reconciled
        keys: list[bytes] = []
        args = [encode(now), encode(cluster.replicas), encode(len(reconciled))]
        for (key, at), (requests, tokens) in reconciled.items():
            keys.append(key)
            args.append(encode(at))
            args.append(encode(requests))
            args.append(encode(tokens))
        reconciled.clear()
        keys += rnd.keys
        args.append(encode(len(rnd.answers)))
        args += rnd.args
        rnd.body = b"".join([encode(len(keys)), *keys, *args])
        head = b"*%d\r\n%s" % (3 + len(keys) + len(args) - len(rnd.args) + rnd.argc, ADMIT.evalsha)
        self._write(rnd, now, head)

    def _write(self, rnd: Round, now: int, head: bytes) -> None:
        conn = self.cluster.connection
        if conn is None:
            rnd.answer(-1, None)
            return

        def replied(reply: Any) -> None:
            self._flying -= 1
            if isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT") and head.endswith(ADMIT.evalsha):
                self._write(rnd, now, head[:-len(ADMIT.evalsha)] + ADMIT.eval)  # a Redis that restarted
            elif isinstance(reply, Exception):
                if self.cluster.up:
                    self.cluster.down(reply)
                rnd.answer(-1, None)
            else:
                rnd.answer(now, reply)
            if self._next is not None and not self._flying:
                self._send()  # the admissions that arrived while this round was out

        try:
            conn.write(head + rnd.body, replied)
        except ConnectionLost as err:
            self.cluster.down(err)
            rnd.answer(-1, None)
            return
        self._flying += 1
        self.sent += 1
