"""Registries from outside the package: a custom provider adapter and a custom strategy, defined here.

``default_registries().with_provider("acme", ...).with_strategy("reverse", ...)`` lets a config use both; it loads
with ``load_dict(..., registries=...)``, and ``Router(config, registries=...)`` answers through them (the adapter
builds the requests, the strategy orders the deployments). Without the registries the config is refused, naming
``models[0].strategy`` and each deployment's ``provider``.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import pytest

from stellwerk import ConfigError, Router, default_registries, load_dict
from stellwerk.config import DeploymentConfig
from stellwerk.errors import UpstreamError
from stellwerk.providers import Endpoint, StreamDecoder, UpstreamRequest
from stellwerk.providers.openai import OpenAIAdapter
from stellwerk.routing.strategies import Candidate, Ranking, RequestFacts, Scored, StrategyBase, StrategySpec
from stellwerk.sim import SimProvider
from support import USER

StartSim = Callable[..., Awaitable[SimProvider]]


class AcmeAdapter:
    """Acme speaks OpenAI's wire format; this adapter says so, and notes each upstream model it sends to."""

    name = "acme"

    def __init__(self) -> None:
        self._wire = OpenAIAdapter()
        self.sent: list[str] = []

    def endpoint(self, deployment: DeploymentConfig) -> Endpoint:
        return self._wire.endpoint(deployment)

    def chat_request(self, deployment: DeploymentConfig, endpoint: Endpoint, body: dict[str, Any],
                     stream: bool) -> UpstreamRequest:
        self.sent.append(deployment.model)
        return self._wire.chat_request(deployment, endpoint, body, stream)

    def chat_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return self._wire.chat_response(deployment, body)

    def stream_decoder(self, deployment: DeploymentConfig) -> StreamDecoder:
        return self._wire.stream_decoder(deployment)

    def embeddings_request(self, deployment: DeploymentConfig, endpoint: Endpoint,
                           body: dict[str, Any]) -> UpstreamRequest:
        return self._wire.embeddings_request(deployment, endpoint, body)

    def embeddings_response(self, deployment: DeploymentConfig, body: bytes) -> tuple[dict[str, Any], bytes | None]:
        return self._wire.embeddings_response(deployment, body)

    def classify(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return self._wire.classify(status, headers, body)


class ReverseOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reason: str = "last listed first"


class ReverseStrategy(StrategyBase):
    """The deployments in reverse listed order."""

    name = "reverse"

    def __init__(self, options: ReverseOptions, *, rng: random.Random, clock: Callable[[], float]) -> None:
        self.options = options

    def rank(self, candidates: Sequence[Candidate], request: RequestFacts) -> Ranking:
        order = tuple(Scored(c.id, float(i), "reversed") for i, c in enumerate(reversed(candidates)))
        return Ranking(order, f"reverse: {order[0].id} ({self.options.reason})" if order else "reverse: none")


REGISTRIES = default_registries().with_provider("acme", AcmeAdapter).with_strategy(
    "reverse", StrategySpec(ReverseOptions, ReverseStrategy))


def acme_config(*api_bases: str, **options: Any) -> dict[str, Any]:
    deployments = [{"id": f"d{i}", "provider": "acme", "model": f"acme-{i}", "api_base": base}
                   for i, base in enumerate(api_bases)]
    return {"models": [{"name": "chat", "strategy": "reverse", "strategy_options": options,
                        "deployments": deployments}]}


async def test_a_custom_provider_and_strategy_answer(start_sim: StartSim) -> None:
    first, last = await start_sim(), await start_sim()
    config = load_dict(acme_config(first.base_url, last.base_url, reason="acme test"), env={}, registries=REGISTRIES)
    async with Router(config, registries=REGISTRIES) as router:
        result = await router.chat(model="chat", messages=USER)
        stream = await router.chat_stream(model="chat", messages=USER)
        assert [c async for c in stream]
    assert (result.deployment, result.route) == ("d1", "reverse: d1 (acme test)")
    assert stream.deployment == "d1" and stream.route == "reverse: d1 (acme test)"
    assert (first.stats.requests, last.stats.requests) == (0, 2)
    assert router.registries.adapter("acme").sent == ["acme-1", "acme-1"]  # type: ignore[attr-defined]
    assert router.dry_run("chat")["steps"][0]["order"] == ["d1", "d0"]


async def test_from_dict_takes_the_registries_too() -> None:
    async with Router.from_dict(acme_config("http://127.0.0.1:9/v1"), env={}, registries=REGISTRIES) as router:
        assert router.table.models["chat"].planner.strategy.name == "reverse"
        assert router.table.deployments["d0"].adapter.name == "acme"


def test_the_custom_options_struct_validates_the_options() -> None:
    with pytest.raises(ConfigError) as refused:
        load_dict(acme_config("http://127.0.0.1:9/v1", colour="red"), env={}, registries=REGISTRIES)
    assert any(p.startswith("models[0].strategy_options.colour: unknown key") for p in refused.value.problems)


def test_without_the_registries_the_config_is_refused() -> None:
    data = acme_config("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1")
    with pytest.raises(ConfigError) as refused:
        load_dict(data, env={})
    problems = refused.value.problems
    assert any(p.startswith("models[0].strategy: expected one of") and "'reverse'" in p for p in problems)
    for i in range(2):
        assert any(p.startswith(f"models[0].deployments[{i}].provider: expected one of") and "'acme'" in p
                   for p in problems)
    config = load_dict(data, env={}, registries=REGISTRIES)
    with pytest.raises(ConfigError, match=r"models\[0\]\.strategy"):
        Router(config)  # the router checks the config against its own (default) registries


async def test_the_gateway_serves_custom_registries_and_middlewares(start_sim: StartSim) -> None:
    from stellwerk.gateway import Gateway
    from stellwerk.pipeline import Call, Handler, Reply
    from support import request

    seen: list[str] = []

    async def tag(call: Call, next_handler: Handler) -> Reply:
        seen.append(call.model)
        return await next_handler(call)

    first, last = await start_sim(), await start_sim()
    config = load_dict(acme_config(first.base_url, last.base_url), env={}, registries=REGISTRIES)
    gateway = Gateway(config, registries=REGISTRIES, middlewares={"tracing": [tag]})
    await gateway.start("127.0.0.1", 0)
    try:
        answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER})
    finally:
        await gateway.close(grace=1.0)
    assert answer.status == 200, answer.body
    assert answer.headers["x-stellwerk-deployment"] == "d1"
    assert seen == ["chat"]
