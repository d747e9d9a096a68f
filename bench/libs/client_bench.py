"""CPU per request of one async HTTP client doing keep-alive POSTs to a fast local server.

Runs in bench/.venv-libs, one client library per process (so imports and
caches of one do not affect another). ``CONCURRENCY`` tasks share one client and
each sends requests back to back; after a warm-up, the process's own CPU time
over the measured part is divided by the requests completed. Bounded by both
``--seconds`` and ``--max-requests``.

Usage: python client_bench.py {stellwerk,aiohttp,httpx} URL [--seconds 3]
Prints one JSON line: {"client", "requests", "seconds", "cpu_us_per_request", "errors"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import Awaitable, Callable

import uvloop

CONCURRENCY = 16
BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "x" * 900}]}).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}

Send = Callable[[], Awaitable[bytes]]


async def stellwerk_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from stellwerk.http.client import HTTPClient

    client = HTTPClient()
    headers = list(HEADERS.items())

    async def send() -> bytes:
        resp = await client.request("POST", url, headers, BODY, timeout=5)
        return await resp.read()

    return send, client.close


async def aiohttp_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession()

    async def send() -> bytes:
        async with session.post(url, data=BODY, headers=HEADERS) as resp:
            return await resp.read()

    return send, session.close


async def httpx_client(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(timeout=5)

    async def send() -> bytes:
        resp = await client.post(url, content=BODY, headers=HEADERS)
        return resp.content

    return send, client.aclose


CLIENTS = {"stellwerk": stellwerk_client, "aiohttp": aiohttp_client, "httpx": httpx_client}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(name: str, url: str, seconds: float, warmup: float, max_requests: int) -> dict[str, object]:
    send, close = await CLIENTS[name](url)
    counts = {"requests": 0, "errors": 0}
    phase = {"measuring": False, "stop": False}

    async def worker() -> None:
        while not phase["stop"]:
            try:
                await send()
                if phase["measuring"]:
                    counts["requests"] += 1
            except Exception:  # any failure counts; the loop is bounded by time
                counts["errors"] += 1
            if counts["requests"] >= max_requests:
                phase["stop"] = True

    tasks = [asyncio.create_task(worker()) for _ in range(CONCURRENCY)]
    await asyncio.sleep(warmup)
    phase["measuring"] = True
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    deadline = t0 + seconds
    while not phase["stop"] and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    cpu1, t1 = cpu_seconds(), time.perf_counter()
    done = counts["requests"]
    phase["stop"] = True
    await asyncio.wait(tasks, timeout=10)
    await close()
    return {"client": name, "requests": done, "seconds": round(t1 - t0, 3), "errors": counts["errors"],
            "cpu_us_per_request": round((cpu1 - cpu0) / done * 1e6, 1) if done else None}


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("client", choices=sorted(CLIENTS))
    p.add_argument("url")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--max-requests", type=int, default=500_000)
    a = p.parse_args()
    print(json.dumps(uvloop.run(run(a.client, a.url, a.seconds, a.warmup, a.max_requests))))
