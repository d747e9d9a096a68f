"""Keys, accounts, store and ledger of one gateway, opened, loaded and closed together.

    Governance(config.server, config.keys) ─► store (server.store) ─► keyring (store + declared keys)
                                           ─► ledger (server.spend_journal, else next to an SQLite store)
    start(accounts): recover the journal, load keys, seed this period's spend from the ledger,
                     and follow other replicas' key changes when the store tells them (PostgreSQL)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import Callable, Sequence

from stellwerk.config.schema import KeyConfig, ServerConfig
from stellwerk.state.interfaces import KeyChanges, Store
from stellwerk.state.records import KeyRecord, TeamRecord, period_start
from stellwerk.state.url import DEFAULT_STORE, journal_of, open_store

from .accounts import Accounts
from .keyring import Keyring
from .ledger import SpendLedger

__all__ = ["Governance", "declared_keys"]


def declared_keys(keys: Sequence[KeyConfig]) -> list[tuple[KeyRecord, str]]:
    """The config file's keys as records (id ``cfg_<name>``) with their secrets."""
    out = []
    for key in keys:
        expires = datetime.datetime.fromisoformat(key.expires_at).timestamp() if key.expires_at else None
        record = KeyRecord(id=f"cfg_{key.name}", name=key.name, hash="", team=key.team, models=tuple(key.models),
                           rpm=key.rpm, tpm=key.tpm, max_parallel=key.max_parallel, budget=key.budget,
                           expires_at=expires, scopes=tuple(key.scopes), tags=tuple(key.tags),
                           metadata=dict(key.metadata), source="config")
        out.append((record, key.key))
    return out


class Governance:
    """Present when ``server.master_key`` or ``server.store`` is set; ``enforced`` when the master key is."""

    def __init__(self, server: ServerConfig, keys: Sequence[KeyConfig], *,
                 wall: Callable[[], float] = time.time) -> None:
        self.enforced = server.master_key is not None
        url = server.store or DEFAULT_STORE
        self.store: Store = open_store(url)
        self.keyring = Keyring(self.store, master_key=server.master_key, wall=wall)
        self.ledger = SpendLedger(self.store, journal_of(url, server.spend_journal), wall=wall,
                                  interval=server.spend_flush_interval)
        self._declared = declared_keys(keys)
        self._wall = wall
        self._following: asyncio.Task[None] | None = None

    async def start(self, accounts: Accounts | None) -> None:
        await self.ledger.start()
        await self.keyring.load(self._declared)
        if accounts is not None:
            await self.seed(accounts)
        if isinstance(self.store, KeyChanges):
            self._following = asyncio.create_task(self.store.follow(self._changed), name="key-changes")

    async def _changed(self, record: KeyRecord | TeamRecord | None) -> None:
        """A key or team another replica changed (None: reload all, after (re)connecting)."""
        if record is None:
            await self.keyring.load(self._declared)
        else:
            self.keyring.apply(record)

    async def seed(self, accounts: Accounts) -> None:
        """This budget period's requests and spend of every key and team, from the ledger."""
        now = self._wall()
        subjects = [("key", "key:" + k.id, k.id, k.budget.period if k.budget else "total")
                    for k in self.keyring.all_keys()]
        subjects += [("team", "team:" + t.name, t.name, t.budget.period if t.budget else "total")
                     for t in self.keyring.all_teams()]
        cache: dict[tuple[str, str], dict[str | None, tuple[int, float]]] = {}
        for group, account, name, period in subjects:
            rows = cache.get((group, period))
            if rows is None:
                found = await self.store.spend("key" if group == "key" else "team", since=period_start(period, now))
                rows = cache[group, period] = {r.key: (r.requests, r.cost) for r in found}
            requests, spent = rows.get(name, (0, 0.0))
            accounts.seed(account, period, period_start(period, now), requests, spent)

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._following
        await self.ledger.close()
        await self.store.close()
