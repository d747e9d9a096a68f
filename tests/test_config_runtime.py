"""Configuration at run time through the gateway: the file watched, versions, the version header, invalid
changes refused whole, rollback, dry runs, drains, API edits kept under a changed file, state carried over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import yaml

from stellwerk import load_file
from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import GUARD, USER, config, deployment, model, request

StartSim = Callable[..., Awaitable[SimProvider]]


async def _served(path: Path, data: dict[str, Any]) -> Gateway:
    path.write_text(yaml.safe_dump(data))
    gateway = Gateway(load_file(path, env={}), source=path)
    await gateway.start("127.0.0.1", 0)
    return gateway


async def _until(predicate: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(GUARD):
        while not await predicate():
            await asyncio.sleep(0.05)


async def test_a_file_edit_under_load_fails_no_request_and_moves_the_version(tmp_path: Path,
                                                                             start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    path = tmp_path / "stellwerk.yaml"
    gateway = await _served(path, config(model("chat", deployment("a", a.base_url))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    versions: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            raw = await client.chat.completions.with_raw_response.create(model="chat", messages=USER)
            versions.append(raw.headers["x-stellwerk-config-version"])

    workers = [asyncio.create_task(load()) for _ in range(4)]
    try:
        await _until(lambda: asyncio.sleep(0, len(versions) > 10))
        path.write_text(yaml.safe_dump(config(model("chat", deployment("b", b.base_url)))))

        async def moved() -> bool:
            return bool(versions) and versions[-1] == "2"
        await _until(moved)
    finally:
        stop.set()
        await asyncio.gather(*workers)  # any failed request raises here
        await client.close()
        await gateway.close(grace=1.0)
    assert set(versions) == {"1", "2"} and b.stats.requests > 0
    assert versions.index("2") > 0 and "1" not in versions[versions.index("2") + 8:]


async def test_an_invalid_file_is_refused_whole(tmp_path: Path, start_sim: StartSim) -> None:
    sim = await start_sim()
    path = tmp_path / "stellwerk.yaml"
    gateway = await _served(path, config(model("chat", deployment("a", sim.base_url))))
    try:
        path.write_text(yaml.safe_dump(config(model("chat", deployment("a", sim.base_url, timeout=-1)))))

        async def refused() -> bool:
            shown = await request(gateway.port, "GET", "/admin/config")
            return shown.json["last_error"] is not None
        await _until(refused)
        shown = (await request(gateway.port, "GET", "/admin/config")).json
        assert shown["version"] == 1 and "models[0].deployments[0].timeout" in shown["last_error"]
        answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        assert answer.status == 200 and answer.headers["x-stellwerk-config-version"] == "1"
        reload = await request(gateway.port, "POST", "/admin/config/reload")
        assert reload.status == 400 and "timeout" in reload.json["error"]["message"]
    finally:
        await gateway.close(grace=1.0)


async def test_versions_diff_rollback_and_dry_run(tmp_path: Path, start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    path = tmp_path / "stellwerk.yaml"
    first = config(model("chat", deployment("a", a.base_url, api_key="sk-secret-0123456789")))
    gateway = await _served(path, first)
    try:
        second = yaml.safe_dump(config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url),
                                             strategy="weighted")))
        dry = await request(gateway.port, "PUT", "/admin/config?dry_run=true", second.encode(),
                            {"content-type": "application/yaml"})
        assert dry.status == 200 and dry.json["diff"]["deployments"]["added"] == ["b"]
        assert dry.json["models"]["chat"]["routing_changes"] is True
        assert (await request(gateway.port, "GET", "/admin/config")).json["version"] == 1  # nothing applied
        applied = await request(gateway.port, "PUT", "/admin/config", second.encode(),
                                {"content-type": "application/yaml"})
        assert applied.status == 200 and applied.json["version"] == 2
        changes = (await request(gateway.port, "GET", "/admin/config/diff?from=1&to=2")).json
        assert changes["models"]["changed"]["chat"]["strategy"] == {"from": "failover", "to": "weighted"}
        assert changes["deployments"]["changed"]["a"]["api_key"] == "changed"  # never the value
        listed = (await request(gateway.port, "GET", "/admin/config/versions")).json["versions"]
        assert [v["version"] for v in listed] == [1, 2]
        old = (await request(gateway.port, "GET", "/admin/config/versions/1")).json
        assert old["config"]["models"][0]["deployments"][0]["api_key"] == "[redacted]"
        back = await request(gateway.port, "POST", "/admin/config/rollback", {"version": 1})
        assert back.status == 200 and back.json["version"] == 3 and back.json["source"] == "rollback:1"
        assert (await request(gateway.port, "GET", "/admin/config")).json["config"]["models"][0]["strategy"] == \
            "failover"
        missing = await request(gateway.port, "POST", "/admin/config/rollback", {"version": 99})
        assert missing.status == 400
    finally:
        await gateway.close(grace=1.0)


async def test_api_edits_stay_under_a_changed_file_and_drains_take_no_traffic(tmp_path: Path,
                                                                               start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    path = tmp_path / "stellwerk.yaml"
    gateway = await _served(path, config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url))))
    try:
        drained = await request(gateway.port, "PUT", "/admin/deployments/a", {"enabled": False})
        assert drained.status == 200 and drained.json["edits"] == 1
        for _ in range(3):
            answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
            assert answer.headers["x-stellwerk-deployment"] == "b"
        assert a.stats.requests == 0
        path.write_text(yaml.safe_dump(config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url),
                                                   timeout=20))))
        reloaded = await request(gateway.port, "POST", "/admin/config/reload")
        assert reloaded.status == 200 and reloaded.json["edits"] == 1  # the drain survives the new file
        answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        assert answer.headers["x-stellwerk-deployment"] == "b"
        bad = await request(gateway.port, "PUT", "/admin/deployments/zz", {"enabled": False})
        assert bad.status == 404
    finally:
        await gateway.close(grace=1.0)


async def test_a_stream_survives_a_reload_and_breaker_state_carries_over(tmp_path: Path,
                                                                          start_sim: StartSim) -> None:
    slow = await start_sim(tokens_per_second=40, output_tokens=20)
    path = tmp_path / "stellwerk.yaml"
    gateway = await _served(path, config(model("chat", deployment("a", slow.base_url))))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="k", max_retries=0, timeout=GUARD)
    try:
        breaker = gateway.router.table.deployments["a"].breaker
        stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
        first = await anext(aiter(stream))
        path.write_text(yaml.safe_dump(config(model("chat", deployment("a", slow.base_url), timeout=25))))
        reloaded = await request(gateway.port, "POST", "/admin/config/reload")
        assert reloaded.status == 200 and reloaded.json["version"] == 2
        rest = [chunk async for chunk in stream]
        text = (first.choices[0].delta.content or "") + "".join(c.choices[0].delta.content or "" for c in rest
                                                                if c.choices)
        assert len(text.split()) == 20  # the whole answer, on the version it started with
        assert gateway.router.table.deployments["a"].breaker is breaker  # same identity: same live state
    finally:
        await client.close()
        await gateway.close(grace=1.0)


async def test_a_restart_keeps_the_api_edits_and_goes_on_numbering(tmp_path: Path, start_sim: StartSim) -> None:
    a, b = await start_sim(), await start_sim()
    data = config(model("chat", deployment("a", a.base_url), deployment("b", b.base_url), strategy="weighted"),
                  store=f"sqlite:///{tmp_path}/stellwerk.db")
    path = tmp_path / "stellwerk.yaml"
    gateway = await _served(path, data)
    try:
        assert (await request(gateway.port, "PUT", "/admin/deployments/b/weight", {"weight": 7})).status == 200
        assert (await request(gateway.port, "PUT", "/admin/deployments/a", {"enabled": False})).status == 200
    finally:
        await gateway.close(grace=1.0)
    again = await _served(path, data)  # the same file and store: a restart
    try:
        shown = (await request(again.port, "GET", "/admin/config")).json
        assert shown["source"] == "restore:3" and shown["version"] == 4
        assert {(e["target"], e["field"], e["value"]) for e in shown["overlay"]} == {("b", "weight", 7),
                                                                                     ("a", "enabled", False)}
        assert "a" not in again.router.table.deployments and again.router.table.deployments["b"].weight == 7
        answer = await request(again.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
        assert answer.headers["x-stellwerk-config-version"] == "4" and answer.headers["x-stellwerk-deployment"] == "b"
    finally:
        await again.close(grace=1.0)
