"""Screenshots of the dashboard's views for the README: real traffic through a gateway on simulated providers.

    .venv/bin/python docs/screenshots.py [--seconds 90]

Two models: ``chat`` (failover from ``primary`` to ``backup``; ``primary`` has an outage in the middle of
the run) and ``exp`` (an A/B test, the treatment slightly flakier). Needs Playwright and Debian's
``chromium``; writes ``docs/dashboard-<view>.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from pathlib import Path

import httpx

from stellwerk import load_dict
from stellwerk.gateway import Gateway
from stellwerk.sim import Profile, SimProvider

HERE = Path(__file__).parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


async def traffic(client: httpx.AsyncClient, seconds: float, primary: SimProvider) -> None:
    rng = random.Random(7)
    loop = asyncio.get_running_loop()
    start = loop.time()
    outage = False
    while (elapsed := loop.time() - start) < seconds:
        if not outage and elapsed > seconds * 0.45:
            primary.reset()  # outage windows count from now
            primary.update(outages=[{"start": 0, "duration": seconds * 0.25, "status": 503}])
            outage = True
        model = "chat" if rng.random() < 0.7 else "exp"
        body = {"model": model, "messages": [{"role": "user", "content": f"question {rng.randint(1, 999)}"}]}
        headers = {"x-stellwerk-user": f"user-{rng.randint(1, 200)}"}
        await client.post("/v1/chat/completions", json=body, headers=headers)
        await asyncio.sleep(rng.uniform(0.05, 0.25) * (2 if elapsed < seconds * 0.2 else 1))


async def main(seconds: float) -> None:
    from playwright.async_api import async_playwright

    price = {"input_per_mtok": 2.5, "output_per_mtok": 10}
    cheap = {"input_per_mtok": 0.15, "output_per_mtok": 0.6}
    sims = [SimProvider(Profile(latency_ms=lat, tokens_per_second=0, output_tokens=out, error_rate=err, seed=i))
            for i, (lat, out, err) in enumerate([(120, 60, 0.0), (200, 60, 0.0), (90, 40, 0.01), (140, 40, 0.04)])]
    for sim in sims:
        await sim.start("127.0.0.1", 0)
    primary, backup, control, treatment = sims
    config = load_dict({"models": [
        {"name": "chat", "retries": 0, "breaker": {"consecutive_failures": 3},
         "deployments": [{"id": "primary", "provider": "openai", "model": "gpt-4o", "api_base": primary.base_url,
                          "price": price},
                         {"id": "backup", "provider": "openai", "model": "gpt-4o-mini", "api_base": backup.base_url,
                          "price": cheap}]},
        {"name": "exp", "strategy": "ab", "strategy_options": {"variants": [
            {"name": "control", "percent": 50, "deployments": ["control"]},
            {"name": "treatment", "percent": 50, "deployments": ["treatment"]}]},
         "deployments": [{"id": "control", "provider": "openai", "model": "m-a", "api_base": control.base_url,
                          "price": cheap},
                         {"id": "treatment", "provider": "openai", "model": "m-b", "api_base": treatment.base_url,
                          "price": price}]}]})
    gateway = Gateway(config)
    await gateway.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{gateway.port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client, async_playwright() as driver:
            browser = await driver.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 820})
            await page.goto(f"{base}/ui#routing")
            await traffic(client, seconds, primary)
            for view in ("overview", "deployments", "routing", "experiments"):
                await page.goto(f"{base}/ui#{view}")
                await page.wait_for_selector("#status.live")
                if view == "routing":
                    await page.fill("#dry-prompt", "Summarise this contract")
                    await page.click("#dry-run button")
                await page.wait_for_timeout(800)  # charts and tables drawn
                await page.screenshot(path=str(HERE / f"dashboard-{view}.png"))
                print(f"docs/dashboard-{view}.png", file=sys.stderr)
            await browser.close()
    finally:
        await gateway.close(grace=0)
        for sim in sims:
            await sim.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    asyncio.run(main(parser.parse_args().seconds))
