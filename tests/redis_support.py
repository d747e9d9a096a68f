"""Redis for tests: the machine's (a key prefix of the test's own, deleted afterwards; never flushed) and
throwaway servers of a test's own on free ports, for tests that kill and restart Redis.

Without ``redis-server`` these tests skip, saying why; under ``CI=true`` they run (and fail if it is missing).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from support import GUARD, STARTUP

MACHINE_REDIS = "redis://127.0.0.1:6379/0"

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None and os.environ.get("CI") != "true",
                                 reason="redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def own_prefix() -> AsyncIterator[str]:
    """A key prefix of the test's own on the machine's Redis; its keys are deleted afterwards (a fixture body)."""
    name = f"stellwerk-test:{os.getpid()}:{os.urandom(4).hex()}:"
    yield name
    client = aioredis.Redis.from_url(MACHINE_REDIS)
    try:
        keys = [key async for key in client.scan_iter(match=name + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class OwnRedis:
    """A redis-server of this test's own on a free port (nothing persisted)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def ready(self) -> None:
        async with asyncio.timeout(STARTUP):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)  # the server is starting: poll its port (bounded by STARTUP)
                    continue
                writer.close()
                await writer.wait_closed()
                client = aioredis.Redis.from_url(self.url)
                try:
                    if await client.ping():
                        return
                finally:
                    await client.aclose()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(GUARD)
