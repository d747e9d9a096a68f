"""Admissions and reconciliations travel to Redis in rounds: one ADMIT script call, one write, one reply.

    join(accounts, tokens) ─► the next round ─► no round in flight: the round goes now
                                        └─► one in flight: it goes when that one's reply arrives
    reconcile(key, at, delta) ─► summed per account and second ─► rides with the next round
                                                                     (or goes alone after FLUSH_DELAY)
    a round's reply ─► one future for the round; each admission reads its own three integers

One request costs one ADMIT of its own in the worst case (requests one at a time); under load the requests
that arrive while a round is in flight share the next one (one write, one read, one script call), and so
do the reconciliations of the requests that completed meanwhile. Each admission waits at most for the
round in flight plus its own. Bounded: a round takes at most ``MAX_ADMISSIONS`` admissions and
``MAX_RECONCILIATIONS`` reconciliations (more go in a round of their own at once); every round has the
connection's deadline (:class:`~.resp.RespConnection`).

Everything is encoded once where it can be: an account's key and limits when first seen, small integers
from a bounded table, the script's command prefix with the script (:class:`~.scripts.Script`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from .node import Cluster
from .resp import ConnectionLost, RespError, bulk
from .scripts import ADMIT
from .shared_future import SharedFuture

__all__ = ["Account", "Round", "Rounds", "outcome"]

FLUSH_DELAY = 0.05
"""Seconds a reconciliation waits at most for an admission to ride with."""
MAX_ADMISSIONS = 256
"""Admissions per round at most."""
MAX_RECONCILIATIONS = 1024
"""Reconciliations (accounts and seconds) waiting at most; more go out at once."""
_CACHE = 4096
"""Entries of the encoding caches at most (cleared when full)."""


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
    """The admissions of one ADMIT call: their keys and arguments, encoded; one future for all of them (a
    :class:`~.shared_future.SharedFuture`: one admission's cancelled task does not cancel the others), whose
    result is ``(second, reply)`` (0: all admitted, else three integers per admission) or None (Redis
    did not answer)."""

    __slots__ = ("argc", "args", "body", "future", "keys", "size")

    def __init__(self, future: asyncio.Future[tuple[int, list[int] | int] | None]) -> None:
        self.future = future
        self.size = 0
        self.keys: list[bytes] = []
        self.args: list[bytes] = []
        self.argc = 0
        """Arguments in ``args`` (an account's limits are two in one piece)."""
        self.body = b""
        """The encoded command after the script (kept for a retry with EVAL)."""


class Rounds:
    """This replica's rounds on ``cluster``'s command connection."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._next: Round | None = None
        self._flying = 0
        """Rounds written and not answered yet."""
        self._reconciled: dict[tuple[bytes, int], int] = {}
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
    def join(self, accounts: Sequence[Account], tokens: Sequence[int]) -> tuple[Round, int] | None:
        """Add one admission (``tokens`` to reserve on each account) to the next round; the round and the
        admission's place in it, or None when Redis is down. Await ``round.future``, then :func:`outcome`."""
        if not self.cluster.up:
            return None
        rnd = self._next
        if rnd is None:
            rnd = self._next = Round(SharedFuture(loop=asyncio.get_running_loop()))
        index = rnd.size
        rnd.size = index + 1
        keys, args, encode = rnd.keys, rnd.args, self.encode_int
        args.append(encode(len(accounts)))
        rnd.argc += 1 + 3 * len(accounts)
        for account, reserve in zip(accounts, tokens, strict=True):
            keys.append(account.key)
            args.append(account.limits)
            args.append(encode(reserve))
        if not self._flying or rnd.size >= MAX_ADMISSIONS:
            self._send()
        return rnd, index

    # -- reconciliations ------------------------------------------------------------------------------
    def reconcile(self, key: bytes, at: int, delta: int) -> None:
        """Add ``delta`` tokens to second ``at`` of the account whose key is ``key`` (:attr:`Account.key`), with
        the next round; lost while Redis is down."""
        if not delta or not self.cluster.up:
            return
        slot = (key, at)
        pending = self._reconciled
        pending[slot] = pending.get(slot, 0) + delta
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

    # -- the wire -------------------------------------------------------------------------------------
    def _send(self) -> None:
        rnd, self._next = self._next, None
        if rnd is None:
            rnd = Round(SharedFuture(loop=asyncio.get_running_loop()))
        cluster = self.cluster
        conn = cluster.connection
        if conn is None:
            self._reconciled.clear()
            rnd.future.set_result(None)
            return
        now = int(cluster.wall())
        encode, reconciled = self.encode_int, self._reconciled
        keys: list[bytes] = []
        args = [encode(now), encode(len(reconciled))]
        for (key, at), delta in reconciled.items():
            keys.append(key)
            args.append(encode(at))
            args.append(encode(delta))
        reconciled.clear()
        keys += rnd.keys
        args.append(encode(rnd.size))
        args += rnd.args
        rnd.body = b"".join([encode(len(keys)), *keys, *args])
        head = b"*%d\r\n%s" % (3 + len(keys) + len(args) - len(rnd.args) + rnd.argc, ADMIT.evalsha)
        self._write(rnd, now, head)

    def _write(self, rnd: Round, now: int, head: bytes) -> None:
        conn = self.cluster.connection
        if conn is None:
            rnd.future.set_result(None)
            return

        def replied(reply: Any) -> None:
            self._flying -= 1
            if isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT") and head.endswith(ADMIT.evalsha):
                self._write(rnd, now, head[:-len(ADMIT.evalsha)] + ADMIT.eval)  # a Redis that restarted
            elif isinstance(reply, Exception):
                if self.cluster.up:
                    self.cluster.down(reply)
                rnd.future.set_result(None)
            else:
                rnd.future.set_result((now, reply))
            if self._next is not None and not self._flying:
                self._send()  # the admissions that arrived while this round was out

        try:
            conn.write(head + rnd.body, replied)
        except ConnectionLost as err:
            self.cluster.down(err)
            rnd.future.set_result(None)
            return
        self._flying += 1


def outcome(result: tuple[int, list[int] | int] | None, index: int) -> tuple[int, int, int, int] | None:
    """One admission's outcome in its round's result: (second, 0 or the full account's position from 1, its
    requests, its tokens), or None when Redis did not answer."""
    if result is None:
        return None
    at, reply = result
    if not isinstance(reply, list):  # 0: the whole round was admitted
        return at, 0, 0, 0
    i = 3 * index
    return at, reply[i], reply[i + 1], reply[i + 2]
