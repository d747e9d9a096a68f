"""Gateway processes (``stellwerk serve``) for the multi-replica tests, each on its own port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from redis_support import free_port
from support import GUARD, STARTUP


class Replica:
    def __init__(self, folder: Path, name: str, data: dict[str, Any], port: int | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.config = folder / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump(data))
        self.log = folder / f"{name}.log"
        self.port = port or free_port()
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "stellwerk.cli", "serve", "--config", str(self.config),
                                          "--port", str(self.port), *self.args], stdout=out, stderr=out)

    async def ready(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as client, asyncio.timeout(STARTUP):
            while True:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
                try:
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def start_replicas(folder: Path, configs: list[dict[str, Any]]) -> list[Replica]:
    replicas = [Replica(folder, f"replica{i}", data) for i, data in enumerate(configs)]
    for replica in replicas:
        replica.start()
    try:
        await asyncio.gather(*(r.ready() for r in replicas))
    except BaseException:
        for replica in replicas:
            replica.stop()
        raise
    return replicas


async def poll(check: Any, what: str, guard: float = GUARD) -> None:
    """Wait until ``await check()`` is true (a hang guard, never a timing assertion)."""
    try:
        async with asyncio.timeout(guard):
            while not await check():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within the hang guard of {guard}s: {what}") from None
