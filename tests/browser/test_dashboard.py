"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The browser tests skip, saying why, when Chromium or Playwright is missing, but never under ``CI=true``
(``.ci/run`` installs Chromium). ``STELLWERK_SCREENSHOTS=docs`` saves one screenshot per view there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, USER, config, deployment, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]

CHROMIUM = os.environ.get("STELLWERK_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT = int(GUARD * 1000)
"""Milliseconds a browser-side wait may take before the test fails (never reached when things work)."""


def _missing() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI=true: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        yield await context.new_page()
        await context.close()
        await browser.close()


async def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("STELLWERK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(folder) / f"dashboard-{name}.png"))


async def chat(gateway: Gateway, model_name: str = "chat", **headers: str) -> int:
    answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": model_name, "messages": USER},
                           headers=headers or None)
    return answer.status


async def test_dashboard_sees_deployments_and_a_failover_live(page: Any, start_sim: StartSim,
                                                              start_gateway: StartGateway) -> None:
    primary = await start_sim(latency_ms=5, output_tokens=20)
    backup = await start_sim(latency_ms=8, output_tokens=20)
    a = await start_sim(output_tokens=10)
    b = await start_sim(output_tokens=12)
    price = {"input_per_mtok": 2.5, "output_per_mtok": 10}
    gateway = await start_gateway(config(
        model("chat", deployment("primary", primary.base_url, price=price), deployment("backup", backup.base_url,
              price=price), retries=0, breaker={"consecutive_failures": 2}),
        model("exp", deployment("control", a.base_url, price=price), deployment("treatment", b.base_url, price=price),
              strategy="ab", strategy_options={"variants": [
                  {"name": "control", "percent": 50, "deployments": ["control"]},
                  {"name": "treatment", "percent": 50, "deployments": ["treatment"]}]})))
    base = f"http://127.0.0.1:{gateway.port}/ui"
    for i in range(6):
        assert await chat(gateway) == 200
        assert await chat(gateway, "exp", **{"x-stellwerk-user": f"user-{i}"}) == 200

    from playwright.async_api import expect

    await page.goto(f"{base}#deployments")
    await page.wait_for_selector("#status.live", timeout=WAIT)
    for dep in ("primary", "backup", "control", "treatment"):
        await page.wait_for_selector(f'#deployment-table tr[data-deployment="{dep}"]', timeout=WAIT)
    assert await page.get_attribute('#deployment-table tr[data-deployment="primary"]', "data-breaker") == "closed"
    await screenshot(page, "deployments")

    primary.update(outages=[{"start": 0, "duration": 3600, "status": 503}])  # the simulated outage
    for _ in range(3):
        assert await chat(gateway) == 200  # answered by the backup
    await page.goto(f"{base}#routing")
    failover = page.locator("#feed tr.failover").first
    await failover.wait_for(timeout=WAIT)
    assert await failover.get_attribute("data-deployment") == "backup"
    assert "served by backup" in (await failover.inner_text())
    await page.wait_for_selector('#feed tr[data-breaker-change="primary"]', timeout=WAIT)

    await page.select_option("#dry-model", "chat")
    await page.fill("#dry-prompt", "Where would this go?")
    await page.click("#dry-run button")
    await expect(page.locator("#dry-result")).to_contain_text('"backup"', timeout=WAIT)
    await screenshot(page, "routing")

    await page.goto(f"{base}#deployments")
    await page.wait_for_selector('#deployment-table tr[data-deployment="primary"][data-breaker="open"]', timeout=WAIT)

    await page.goto(f"{base}#experiments")
    await page.wait_for_selector('table[data-experiment="exp"] tr[data-variant="control"]', timeout=WAIT)
    await page.wait_for_selector('table[data-experiment="exp"] tr[data-variant="treatment"]', timeout=WAIT)
    await screenshot(page, "experiments")

    await page.goto(f"{base}#overview")
    await expect(page.locator("#t-requests")).to_have_text("15", timeout=WAIT)
    await screenshot(page, "overview")
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    await page.reload()
    await page.wait_for_selector("#status.live", timeout=WAIT)
    assert errors == []


async def test_ui_is_served_from_the_package_with_a_strict_policy(start_sim: StartSim,
                                                                  start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    page_answer = await request(gateway.port, "GET", "/ui")
    assert page_answer.status == 200 and page_answer.headers["content-type"].startswith("text/html")
    policy = page_answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "http" not in policy
    assert b"http://" not in page_answer.body and b"https://" not in page_answer.body  # no CDN
    script = await request(gateway.port, "GET", "/ui/app.js")
    assert script.status == 200 and b"https://" not in script.body and b"http://" not in script.body
    assert "set-cookie" not in page_answer.headers
    refused = await request(gateway.port, "GET", "/ui", headers={"Host": "evil.example"})
    assert refused.status == 403  # the admin API's Host check applies


async def test_a_gateway_with_keys_asks_for_one_then_revokes_a_key_from_the_ui(
        page: Any, start_sim: StartSim, start_gateway: StartGateway, tmp_path: Path) -> None:
    """With ``server.master_key``: the page asks for a key, the live feed runs with it (a fetch stream with the
    bearer token), a request made with a new key shows up, and the key is revoked from the Keys view."""
    import httpx

    master = "sk-master-0123456789abcdef"
    sim = await start_sim()
    data = config(model("chat", deployment("up", sim.base_url)))
    data["server"] = {"master_key": master, "store": f"sqlite:///{tmp_path / 'stw.db'}"}
    gateway = await start_gateway(data)
    base = f"http://127.0.0.1:{gateway.port}"
    async with httpx.AsyncClient(base_url=base, headers={"authorization": f"Bearer {master}"}) as admin:
        key = (await admin.post("/admin/keys", json={"name": "app"})).json()
    await page.goto(f"{base}/ui#routing")
    await page.wait_for_selector("#login.active", timeout=WAIT)
    await page.fill("#login-key", "sk-wrong-0123456789abcdef")
    await page.click("#login-form button")
    await page.wait_for_selector("#login.active", timeout=WAIT)  # refused: asked again
    assert "refused" in await page.inner_text("#login-why")
    await page.fill("#login-key", master)
    await page.click("#login-form button")
    await page.wait_for_selector("#status.live", timeout=WAIT)
    assert master not in await page.content()  # the key is not written into the page
    headers = {"authorization": f"Bearer {key['key']}"}
    assert await chat(gateway, **headers) == 200
    await page.wait_for_selector('#feed tr[data-deployment="up"]', timeout=WAIT)

    await page.goto(f"{base}/ui#keys")
    await page.wait_for_selector(f'#key-table tr[data-key="{key["id"]}"][data-revoked="false"]', timeout=WAIT)
    await page.wait_for_selector('#spend-model tr[data-model="chat"]', timeout=WAIT)  # from the ledger
    assert await page.inner_text('#spend-model tr[data-model="chat"] td:nth-child(2)') == "1"
    await screenshot(page, "keys")
    await page.click(f'button[data-revoke="{key["id"]}"]')
    await page.wait_for_selector(f'#key-table tr[data-key="{key["id"]}"][data-revoked="true"]', timeout=WAIT)
    assert await chat(gateway, **headers) == 401  # revoked from the UI: refused from the next request on

    await page.fill("#key-name", "made in the ui")
    await page.click("#key-form button")
    await page.wait_for_selector("#key-table tr >> text=made in the ui", timeout=WAIT)
    secret = (await page.inner_text("#key-secret")).split(": ", 1)[1].split(" ", 1)[0]
    assert secret.startswith("sk-stw-") and await chat(gateway, authorization=f"Bearer {secret}") == 200


async def test_configuration_and_cache_views(page: Any, start_sim: StartSim, start_gateway: StartGateway) -> None:
    """The configuration view lists versions, shows a diff and rolls back; the cache view shows hits and savings."""
    sim = await start_sim(output_tokens=10)
    price = {"input_per_mtok": 2.5, "output_per_mtok": 10}
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url, price=price),
                                               cache={"mode": "exact"})))
    base = f"http://127.0.0.1:{gateway.port}/ui"
    for _ in range(3):
        assert await chat(gateway) == 200  # one miss, then two hits
    changed = await request(gateway.port, "PUT", "/admin/deployments/up/weight", {"weight": 3})
    assert changed.status == 200

    await page.goto(f"{base}#cache")
    await page.wait_for_selector('#cache-table tr[data-cache-model="chat"]', timeout=WAIT)
    cells = await page.eval_on_selector_all('#cache-table tr[data-cache-model="chat"] td', "c => c.map(x => x.textContent)")
    assert cells[1:4] == ["2", "0", "1"] and cells[4] == "66.7%" and float(cells[5]) > 0
    assert "Hit rate 66.7 %" in await page.inner_text("#cache-note")
    await screenshot(page, "cache")

    await page.goto(f"{base}#configuration")
    await page.wait_for_selector('#config-table tr[data-version="2"].current', timeout=WAIT)
    await page.click('button[data-diff="1"]')
    await page.wait_for_selector('#config-diff:has-text("weight")', timeout=WAIT)  # (CSP: no eval'd waits)
    await screenshot(page, "configuration")
    await page.click('button[data-rollback="1"]')
    await page.wait_for_selector('#config-table tr[data-version="3"].current', timeout=WAIT)
    assert gateway.router.configuration.history.current.number == 3
    assert gateway.router.table.deployments["up"].config.weight == 1  # version 1's weight again
