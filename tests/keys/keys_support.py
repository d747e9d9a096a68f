"""Helpers of the key tests: a governed gateway (master key, SQLite store in a temporary folder) and its admin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from support import GUARD

MASTER = "sk-master-0123456789abcdef"
PRICE = {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}
"""Dear on purpose: every request costs a few cents, so budgets are reached in a few requests."""


def governed_config(api_base: str, store: Path, *, keys: list[dict[str, Any]] | None = None,
                    **server: Any) -> dict[str, Any]:
    return {
        "models": [
            {"name": "chat", "deployments": [{"id": "a", "provider": "openai", "model": "sim-model",
                                              "api_base": api_base, "price": PRICE}]},
            {"name": "other", "deployments": [{"id": "b", "provider": "openai", "model": "sim-model",
                                               "api_base": api_base, "price": PRICE}]},
        ],
        "server": {"master_key": MASTER, "store": f"sqlite:///{store}", "spend_flush_interval": 0.05, **server},
        "keys": keys or [],
    }


async def start_governed(data: dict[str, Any]) -> Gateway:
    gateway = Gateway(load_dict(data, env={}))
    await gateway.start("127.0.0.1", 0)
    return gateway


def admin(gateway: Gateway, key: str | None = MASTER) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", headers=headers, timeout=GUARD)


async def create_key(gateway: Gateway, **fields: Any) -> dict[str, Any]:
    async with admin(gateway) as client:
        response = await client.post("/admin/keys", json={"name": "k", **fields})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
