"""``task`` through the gateway: prompts go to the model (or deployments) of their kind, by hint, rule or the
semantic classifier (the built-in wordllama embedder, loaded from disk)."""

from __future__ import annotations

from typing import Any

import pytest
from test_e2e_support import StartSim, routed, served

from support import config, deployment, model

CODE = "Write a Python function that parses a CSV file and returns a list of dicts."
MATH = "Solve for x: 3x + 7 = 22."
GENERAL = "Can you recommend a good book for a long flight?"
URGENT = "URGENT: write a Python function that reverses a linked list"
SPANISH_MATH = "Resuelve la ecuación 3x + 5 = 20."


@pytest.fixture
async def task_setup(start_sim: StartSim) -> dict[str, Any]:
    """Sims ``coder``, ``reasoning``, ``general`` and ``own`` (the task model's own deployment); model ``auto``
    routes to the models ``coder``/``reasoning``/``general``, model ``split`` to subsets of its deployments."""
    sims = {name: await start_sim() for name in ("coder", "reasoning", "general", "own")}
    data = config(
        model("coder", deployment("coder-1", sims["coder"].base_url)),
        model("reasoning", deployment("reasoning-1", sims["reasoning"].base_url)),
        model("general", deployment("general-1", sims["general"].base_url)),
        model("auto", deployment("auto-own", sims["own"].base_url), strategy="task", strategy_options={
            "default": "general",
            "routes": [{"name": "code", "target": "coder"}, {"name": "math", "target": "reasoning"},
                       {"name": "general", "target": "general"}],
            "rules": [{"regex": "(?i)^urgent:", "route": "general"}],
        }),
        model("split", deployment("split-code", sims["coder"].base_url), deployment("split-general", sims["general"].base_url),
              strategy="task", strategy_options={
                  "default": "general",
                  "routes": [{"name": "code", "deployments": ["split-code"]},
                             {"name": "general", "deployments": ["split-general"]}],
              }),
    )
    return {"sims": sims, "config": data}


def counts(setup: dict[str, Any]) -> list[int]:
    return served(*setup["sims"].values())


async def test_prompts_land_on_the_model_of_their_kind(task_setup: dict[str, Any]) -> None:
    async with routed(task_setup["config"]) as gw:
        raw = await gw.sdk.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": CODE}])
        assert raw.headers["x-stellwerk-deployment"] == "coder-1"
        assert "task route code: task code: classifier p=" in raw.headers["x-stellwerk-route"]
        assert raw.parse().model  # a normal completion
        math = await gw.chat("auto", MATH)
        general = await gw.chat("auto", GENERAL)
    assert (math.deployment, general.deployment) == ("reasoning-1", "general-1")
    assert "task route math: task math: classifier" in math.route
    assert counts(task_setup) == [1, 1, 1, 0]  # the task model's own deployment is not used


async def test_hint_header_and_rules_decide_before_the_classifier(task_setup: dict[str, Any]) -> None:
    async with routed(task_setup["config"]) as gw:
        hinted = await gw.chat("auto", CODE, headers={"x-stellwerk-task": "math"})
        by_metadata = await gw.chat("auto", CODE, metadata={"stellwerk_task": "general"})
        client_data = await gw.chat("auto", CODE, metadata={"task": "general"})  # the client's own: not a hint
        unknown_hint = await gw.chat("auto", CODE, headers={"x-stellwerk-task": "poetry"})
        urgent = await gw.chat("auto", URGENT)
    assert hinted.deployment == "reasoning-1"
    assert "task route math: task math: hint header x-stellwerk-task" in hinted.route
    assert by_metadata.deployment == "general-1"
    assert "hint metadata.stellwerk_task" in by_metadata.route
    assert client_data.deployment == "coder-1"
    assert unknown_hint.deployment == "coder-1"  # not a route name: ignored, the classifier decides
    # The prompt is code, but the regex rule is asked first.
    assert urgent.deployment == "general-1"
    assert "task general: rule 1: prompt~/(?i)^urgent:/" in urgent.route


async def test_routes_to_subsets_of_deployments(task_setup: dict[str, Any]) -> None:
    async with routed(task_setup["config"]) as gw:
        code = await gw.chat("split", CODE)
        general = await gw.chat("split", GENERAL)
    assert (code.deployment, general.deployment) == ("split-code", "split-general")
    assert code.route.startswith("failover: split-code (listed first); task route code: ")
    assert counts(task_setup) == [1, 0, 1, 0]


async def test_dry_run_shows_the_route_and_the_target_models_decision(task_setup: dict[str, Any]) -> None:
    async with routed(task_setup["config"]) as gw:
        answer = await gw.admin("GET", "/admin/route", model="auto", prompt=MATH)
        posted = await gw.admin("POST", "/admin/route", {"model": "auto", "messages": [{"role": "user", "content": URGENT}]})
    assert answer.status == 200
    result = answer.json
    assert result["answered_by_model"] == "reasoning"
    route, decision = result["steps"]
    assert (route["strategy"], route["route"], route["target"]) == ("task", "math", "reasoning")
    assert route["summary"].startswith("task math: classifier")
    assert decision["model"] == "reasoning" and decision["order"] == ["reasoning-1"]
    assert posted.json["steps"][0]["route"] == "general"
    assert posted.json["steps"][0]["summary"] == "task general: rule 1: prompt~/(?i)^urgent:/"
    assert counts(task_setup) == [0, 0, 0, 0]  # a dry run sends nothing upstream


async def test_the_language_is_not_the_task_and_unsure_prompts_go_to_the_default(start_sim: StartSim) -> None:
    sims = {name: await start_sim() for name in ("translator", "reasoning", "general", "own")}
    routes = [{"name": "translation", "target": "translator"}, {"name": "math", "target": "reasoning"},
              {"name": "general", "target": "general"}]
    data = config(
        model("translator", deployment("translator-1", sims["translator"].base_url)),
        model("reasoning", deployment("reasoning-1", sims["reasoning"].base_url)),
        model("general", deployment("general-1", sims["general"].base_url)),
        model("auto", deployment("auto-own", sims["own"].base_url), strategy="task",
              strategy_options={"default": "general", "routes": routes}),
        model("strict", deployment("strict-own", sims["own"].base_url), strategy="task",
              strategy_options={"default": "general", "routes": routes, "abstain_below": 1.0}),
    )
    async with routed(data) as gw:
        spanish_math = await gw.chat("auto", SPANISH_MATH)
        asked = await gw.chat("auto", "Traduce al alemán: mañana llegamos a las ocho.")
        unsure = await gw.chat("strict", SPANISH_MATH)
    assert spanish_math.deployment == "reasoning-1", spanish_math.route
    assert asked.deployment == "translator-1", asked.route
    assert unsure.deployment == "general-1"
    assert "task general: default (unsure: math " in unsure.route and "< abstain_below 1.00" in unsure.route
