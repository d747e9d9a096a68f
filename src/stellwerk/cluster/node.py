"""This replica's place in the cluster: its Redis connections, heartbeat, notices, and up/down state.

    start ─► connect (commands) + connect (subscriber on ``P notices``) ─► up
    every ``interval`` s: HEARTBEAT script ─► replicas alive (lease sizes, degraded limits), open breakers
    (resync)
    a command fails ─► down: connections dropped, callers fall back to local state, one warning a minute
    down ─► every ``interval`` s: reconnect (a new ``epoch``) ─► resubscribe, heartbeat (resync) ─► up
    close ─► the ``closing`` hooks (leases given back) ─► leave the replica list

Keys (``P`` is ``server.redis_prefix``): ``P w:<account>`` rate windows (:mod:`.scripts`), ``P replicas``
and ``P beats`` (who is alive), ``P breakers`` (open breakers and until when), channel ``P notices``.
Nothing here blocks a request: while down, every caller sees ``up`` False and uses its local state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from stellwerk import __version__

from .resp import ConnectionLost, RespConnection, RespError, connect
from .scripts import HEARTBEAT, SCRIPTS, Script

__all__ = ["Cluster"]

log = logging.getLogger("stellwerk.cluster")

Notice = dict[str, Any]
GONE_AFTER = 5.0
"""Seconds without a heartbeat after which a replica no longer counts as alive."""
WARN_EVERY = 60.0
"""Seconds between two warnings that Redis is unreachable."""


class Cluster:
    """One replica's view of the shared state. ``wall`` stamps windows and beats; ``clock`` times warnings."""

    def __init__(self, url: str, *, prefix: str = "stellwerk:", timeout: float = 0.25, interval: float = 1.0,
                 wall: Callable[[], float] = time.time, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, replica_id: str | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.interval = interval
        self.wall = wall
        self.clock = clock
        self._sleep = sleep
        self.id = replica_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.up = False
        self.replicas = 1
        """Replicas alive at the last heartbeat (limits are split by it while Redis is down)."""
        self.config_version: Callable[[], int] = lambda: 0
        self.handlers: dict[str, Callable[[Notice], None]] = {}
        """Notice kind ─► what applies it here (``key``, ``team``, ``breaker``, ``config``)."""
        self.resyncs: list[Callable[[list[bytes]], None]] = []
        """Called with the open breakers (flat: deployment, until) after every heartbeat."""
        self.closing: list[Callable[[], Awaitable[None]]] = []
        """Awaited by :meth:`close` while Redis is still up (leases give back what they hold)."""
        self.epoch = 0
        """Connections made so far: what was counted on an earlier one may be gone (a restarted Redis)."""
        self._conn: RespConnection | None = None
        self._sub: RespConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned = -math.inf
        self._channel = prefix + "notices"

    def key(self, name: str) -> str:
        return self.prefix + name

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect (a failure is logged; the replica starts degraded) and start the heartbeat."""
        await self._beat()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None and self.up:  # leave the replica list at once
            for hook in self.closing:
                await hook()
            with contextlib.suppress(ConnectionLost, RespError):
                self._conn.send("HDEL", self.key("replicas"), self.id)
                await self._conn.call("ZREM", self.key("beats"), self.id)
        self._drop()

    async def _run(self) -> None:
        while True:
            await self._sleep(self.interval)
            await self._beat()

    async def _beat(self) -> None:
        if not self.up and not await self._connect():
            return
        info = orjson.dumps({"id": self.id, "version": __version__, "config_version": self.config_version(),
                             "heartbeat": self.wall(), "pid": os.getpid()})
        reply = await self.run(HEARTBEAT, (self.key("replicas"), self.key("beats"), self.key("breakers")),
                               (repr(self.wall()), self.id, info, GONE_AFTER))
        if reply is None:
            return
        self.replicas = max(1, int(reply[0]))
        for resync in self.resyncs:
            resync(reply[1])

    async def _connect(self) -> bool:
        try:
            conn = await connect(self.url, self.timeout)
            sub = await connect(self.url, self.timeout, on_push=self._pushed)
            sub.send("SUBSCRIBE", self._channel)
            for script in SCRIPTS:  # EVALSHA finds them, also after a restart of Redis
                conn.send("SCRIPT", "LOAD", script.source)
        except ConnectionLost as err:
            self.down(err)
            return False
        self._conn, self._sub, self.up = conn, sub, True
        self.epoch += 1
        if self._warned > -math.inf:
            log.warning("redis at %s answers again: shared limits, health and notices are back", self._where())
            self._warned = -math.inf
        return True

    def down(self, err: Exception) -> None:
        """Redis failed: fall back to local state until the heartbeat reconnects."""
        self.up = False
        self._drop()
        now = self.clock()
        if now - self._warned >= WARN_EVERY:
            self._warned = now
            log.warning("redis at %s is unreachable (%s): limits are local (split by %d replicas), breakers local, "
                        "cache bypassed; retrying every %gs", self._where(), err, self.replicas, self.interval)

    def _drop(self) -> None:
        for conn in (self._conn, self._sub):
            if conn is not None:
                conn.close()
        self._conn = self._sub = None

    def _where(self) -> str:
        return self.url.split("@")[-1]  # never the password

    # -- commands -----------------------------------------------------------------------------------
    @property
    def connection(self) -> RespConnection | None:
        """The command connection while Redis is up (for callers that write encoded commands)."""
        return self._conn if self.up else None

    async def run(self, script: Script, keys: tuple[str, ...] | list[str], args: tuple[Any, ...]) -> Any:
        """The script's reply; None when Redis is down or failed (then the cluster is marked down)."""
        conn = self._conn
        if conn is None or not self.up:
            return None
        try:
            try:
                return await conn.call("EVALSHA", script.sha, len(keys), *keys, *args)
            except RespError as err:
                if not str(err).startswith("NOSCRIPT"):
                    raise
                return await conn.call("EVAL", script.source, len(keys), *keys, *args)
        except (ConnectionLost, RespError) as err:
            self.down(err)
            return None

    def send(self, *command: Any) -> None:
        """A command whose reply is not awaited (dropped while down)."""
        conn = self._conn
        if conn is None or not self.up:
            return
        try:
            conn.send(*command)
        except ConnectionLost as err:
            self.down(err)

    def notify(self, kind: str, body: Notice) -> None:
        """Tell every replica (this one ignores its own notices)."""
        self.send("PUBLISH", self._channel, orjson.dumps({"kind": kind, "from": self.id, **body}))

    def _pushed(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) != 3 or reply[0] != b"message":
            return
        try:
            notice = orjson.loads(reply[2])
        except orjson.JSONDecodeError:
            return
        if not isinstance(notice, dict) or notice.get("from") == self.id:
            return
        handler = self.handlers.get(str(notice.get("kind")))
        if handler is not None:
            try:
                handler(notice)
            except Exception:  # a bad notice must not end the subscription
                log.exception("cluster: cannot apply a %s notice", notice.get("kind"))

    # -- inspection ---------------------------------------------------------------------------------
    async def members(self) -> list[dict[str, Any]]:
        """The replicas seen in the last minute, newest heartbeat first (``GET /admin/cluster``)."""
        conn = self._conn
        if conn is None or not self.up:
            return []
        try:
            raw = await conn.call("HGETALL", self.key("replicas"))
        except (ConnectionLost, RespError) as err:
            self.down(err)
            return []
        now = self.wall()
        members = [orjson.loads(raw[i + 1]) for i in range(0, len(raw), 2)]
        for member in members:
            member["alive"] = now - float(member.get("heartbeat", 0)) < GONE_AFTER
        return sorted(members, key=lambda m: -float(m.get("heartbeat", 0)))

    async def status(self) -> dict[str, Any]:
        return {"replica": self.id, "redis": "up" if self.up else "down", "replicas_alive": self.replicas,
                "replicas": await self.members()}
