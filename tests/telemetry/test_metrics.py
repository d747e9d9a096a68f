"""``GET /metrics``: parsed with prometheus_client's own parsers, the counts match the traffic sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from stellwerk.gateway import Gateway
from stellwerk.sim import SimProvider
from support import USER, closed_port_url, config, deployment, model, request

StartSim = Callable[..., Awaitable[SimProvider]]
StartGateway = Callable[..., Awaitable[Gateway]]
MakeClient = Callable[[Gateway], openai.AsyncOpenAI]

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def samples(text: str, parse: Callable[[str], Any] = text_string_to_metric_families) -> dict[tuple[str, frozenset[Any]], float]:
    """Every sample, keyed by name and label set."""
    return {(s.name, frozenset(s.labels.items())): s.value for family in parse(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def total(found: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    """The sum over the samples of ``name`` carrying ``labels`` (and any others)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


async def scrape(gateway: Gateway, accept: str | None = None) -> tuple[str, str]:
    answer = await request(gateway.port, "GET", "/metrics", headers={"Accept": accept} if accept else None)
    assert answer.status == 200
    return answer.body.decode(), answer.headers["content-type"]


async def test_counts_match_the_traffic(start_sim: StartSim, start_gateway: StartGateway, make_client: MakeClient) -> None:
    sim = await start_sim(output_tokens=5)
    gateway = await start_gateway(config(
        model("chat", deployment("down", closed_port_url(), price=PRICE), deployment("up", sim.base_url, price=PRICE),
              retries=0, breaker={"consecutive_failures": 100}),
        model("solo", deployment("gone", closed_port_url()), retries=0)))
    client = make_client(gateway)
    for _ in range(3):
        await client.chat.completions.create(model="chat", messages=USER)
    stream = await client.chat.completions.create(model="chat", messages=USER, stream=True)
    async for _ in stream:
        pass
    for _ in range(2):
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(model="solo", messages=USER)

    text, content_type = await scrape(gateway)
    assert content_type.startswith("text/plain; version=0.0.4")
    found = samples(text)
    assert value(found, "stellwerk_requests_total", model="chat", deployment="up", status="200") == 4
    assert value(found, "stellwerk_requests_total", model="solo", deployment="", status="503") == 2
    assert value(found, "stellwerk_upstream_attempts_total", model="chat", deployment="up", outcome="ok") == 4
    assert total(found, "stellwerk_upstream_attempts_total", model="chat", deployment="down") == 4  # all failed
    assert value(found, "stellwerk_upstream_attempts_total", model="chat", deployment="down", outcome="ok") is None
    assert total(found, "stellwerk_upstream_attempts_total", model="solo", deployment="gone") == 2
    assert value(found, "stellwerk_request_duration_seconds_count", model="chat") == 4
    assert value(found, "stellwerk_request_duration_seconds_count", model="solo") == 2
    assert value(found, "stellwerk_request_duration_seconds_bucket", model="chat", le="+Inf") == 4
    assert value(found, "stellwerk_time_to_first_token_seconds_count", model="chat") == 1
    prompt = value(found, "stellwerk_tokens_total", model="chat", deployment="up", kind="prompt")
    completion = value(found, "stellwerk_tokens_total", model="chat", deployment="up", kind="completion")
    assert completion == 4 * 5
    assert prompt is not None and prompt > 0
    cost = value(found, "stellwerk_cost_usd_total", model="chat", deployment="up")
    assert cost == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6)
    assert value(found, "stellwerk_deployment_up", deployment="up") == 1
    assert value(found, "stellwerk_breaker_state", deployment="up", state="closed") == 1
    assert value(found, "stellwerk_breaker_state", deployment="up", state="open") == 0
    assert value(found, "stellwerk_in_flight", deployment="up") == 0
    assert value(found, "stellwerk_config_version") == 1
    for scope in ("key", "team", "deployment"):
        assert value(found, "stellwerk_ratelimit_rejections_total", scope=scope) == 0
    assert value(found, "stellwerk_cache_requests_total", model="chat", result="hit") == 0
    build = [labels for (name, labels) in found if name == "stellwerk_build_info"]
    assert build and dict(build[0])["version"]


async def test_breaker_and_config_version_are_read_at_scrape_time(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(config(model("chat", deployment("down", closed_port_url()), retries=0,
                                               breaker={"consecutive_failures": 1})))
    await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    gateway.router.configuration.set_weight("down", 2)
    found = samples((await scrape(gateway))[0])
    assert value(found, "stellwerk_deployment_up", deployment="down") == 0
    assert value(found, "stellwerk_breaker_state", deployment="down", state="open") == 1
    assert value(found, "stellwerk_breaker_state", deployment="down", state="closed") == 0
    assert value(found, "stellwerk_config_version") == 2


async def test_openmetrics_when_asked(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    text, content_type = await scrape(gateway, "application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    assert text.endswith("# EOF\n")
    found = samples(text, parse_openmetrics)
    assert value(found, "stellwerk_requests_total", model="chat", deployment="up", status="200") == 1


async def test_label_cardinality_is_bounded(start_sim: StartSim, start_gateway: StartGateway) -> None:
    """Unknown models are refused before routing; request ids and prompts never become labels."""
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    for i in range(20):
        await request(gateway.port, "POST", "/v1/chat/completions",
                      {"model": f"nope-{i}" if i % 2 else "chat", "messages": [{"role": "user", "content": f"x{i}"}]},
                      headers={"x-request-id": f"rid-{i}"})
    text, _ = await scrape(gateway)
    assert "nope-" not in text and "rid-" not in text
    assert [labels for name, labels in samples(text) if name == "stellwerk_requests_total"] == [
        frozenset({("model", "chat"), ("deployment", "up"), ("status", "200")})]


async def test_metrics_follow_the_host_guard_unless_public(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    guarded = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    answer = await request(guarded.port, "GET", "/metrics", headers={"Host": "evil.example"})
    assert answer.status == 403
    public = await start_gateway(config(model("chat", deployment("up", sim.base_url)), metrics_public=True))
    answer = await request(public.port, "GET", "/metrics", headers={"Host": "prometheus-target.internal:4000"})
    assert answer.status == 200 and b"stellwerk_requests_total" in answer.body
    admin = await request(public.port, "GET", "/admin/stats", headers={"Host": "prometheus-target.internal:4000"})
    assert admin.status == 403  # only /metrics is public
