"""Rules of the ``task`` strategy: conditions, their reasons, order, hints, and option checks."""

from __future__ import annotations

import re

import msgspec
import pytest

from stellwerk.routing.task import (
    Header,
    HintRule,
    Keywords,
    Length,
    Metadata,
    PromptRegex,
    Rule,
    TaskOptions,
    TaskRequest,
    build_rules,
    check,
    first_match,
)


def req(text: str = "", **kw: object) -> TaskRequest:
    return TaskRequest.of(text, **kw)  # type: ignore[arg-type]


def test_header_conditions_present_equals_and_pattern() -> None:
    r = req(headers={"X-Team": " Data "})
    assert Header("x-team").check(r) == "header x-team present"
    assert Header("X-TEAM", equals="data").check(r) == "header x-team=data"
    assert Header("x-team", equals="web").check(r) is None
    assert Header("x-team", pattern=re.compile("^ Da")).check(r) == "header x-team~/^ Da/"
    assert Header("x-other").check(r) is None


def test_metadata_compares_scalars_as_text_and_ignores_objects() -> None:
    r = req(metadata={"tier": 2, "beta": True, "nested": {"a": 1}})
    assert Metadata("tier", equals="2").check(r) == "metadata.tier=2"
    assert Metadata("beta", equals="true").check(r) == "metadata.beta=true"
    assert Metadata("nested").check(r) is None
    assert Metadata("missing").check(r) is None


def test_prompt_regex_keywords_and_length() -> None:
    r = req("Please translate this letter into German. It has a stack trace? No.")
    assert PromptRegex(re.compile(r"(?i)translate .* into")).check(r) == "prompt~/(?i)translate .* into/"
    assert Keywords(["compile error", "Stack Trace"]).check(r) == "keyword 'Stack Trace'"
    assert Keywords(["stack", "german"], "all").check(r) == "keywords all of ['stack', 'german']"
    assert Keywords(["stack", "french"], "all").check(r) is None
    assert Keywords(["trans"]).check(r) is None  # whole words only
    assert Length(min_chars=10).check(r) == f"prompt >= 10 chars ({len(r.text)})"
    assert Length(max_chars=10).check(r) is None
    with pytest.raises(ValueError):
        Keywords([" "])


def test_rule_needs_all_conditions_and_explains_them() -> None:
    rule = Rule("long", (Header("x-team", equals="ml"), Length(min_chars=5)), label="rule 3")
    assert rule.match(req("short", headers={"x-team": "ml"})) is not None
    found = rule.match(req("longer text", headers={"x-team": "ml"}))
    assert found is not None
    assert found.route == "long"
    assert found.reason == "rule 3: header x-team=ml and prompt >= 5 chars (11)"
    assert rule.match(req("longer text", headers={"x-team": "web"})) is None
    with pytest.raises(ValueError):
        Rule("x", ())


def test_first_match_wins_in_order() -> None:
    rules = [
        Rule("a", (Keywords(["alpha"]),), label="rule 1"),
        Rule("b", (Keywords(["beta"]),), label="rule 2"),
        Rule("c", (Keywords(["alpha"]),), label="rule 3"),
    ]
    assert first_match(rules, req("beta and alpha")) == first_match(rules[:1], req("alpha"))
    found = first_match(rules, req("only beta"))
    assert found is not None and (found.route, found.reason) == ("b", "rule 2: keyword 'beta'")
    assert first_match(rules, req("gamma")) is None


def test_hint_rule_header_before_metadata_and_unknown_ignored() -> None:
    hint = HintRule(frozenset({"code", "math"}))
    both = hint.match(req(headers={"X-Stellwerk-Task": "math"}, metadata={"stellwerk_task": "code"}))
    assert both is not None and (both.route, both.reason) == ("math", "hint header x-stellwerk-task")
    meta = hint.match(req(metadata={"stellwerk_task": "code"}))
    assert meta is not None and meta.reason == "hint metadata.stellwerk_task"
    assert hint.match(req(metadata={"task": "code"})) is None  # the client's own metadata.task is not a hint
    assert hint.match(req(headers={"x-stellwerk-task": "poetry"})) is None
    assert HintRule(frozenset({"code"}), header=None, key=None).match(req(metadata={"task": "code"})) is None


def test_from_chat_takes_last_user_message_system_and_metadata() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image_url", "image_url": {}}]},
        ],
        "metadata": {"task": "code"},
    }
    r = TaskRequest.from_chat(body, {"X-A": "1"})
    assert (r.text, r.system, dict(r.headers), dict(r.metadata)) == ("second", "Be terse.", {"x-a": "1"}, {"task": "code"})
    assert TaskRequest.from_chat({"messages": "junk"}).text == ""


def options(**raw: object) -> TaskOptions:
    base: dict[str, object] = {"default": "general", "routes": [{"name": "general", "target": "cheap"}]}
    return msgspec.convert({**base, **raw}, TaskOptions)


def test_build_rules_from_options_in_order() -> None:
    opts = options(
        routes=[{"name": "general", "target": "cheap"}, {"name": "code", "target": "coder"}],
        rules=[
            {"header": "x-team", "equals": "data", "route": "code"},
            {"regex": "(?i)stack ?trace", "min_chars": 3, "route": "code"},
            {"metadata": "kind", "matches": "^gen", "route": "general"},
        ],
    )
    assert check(opts) == []
    rules = build_rules(opts.rules)
    found = first_match(rules, req("here is a Stacktrace"))
    assert found is not None and found.reason.startswith("rule 2: prompt~/(?i)stack ?trace/ and prompt >= 3 chars")
    found = first_match(rules, req("x", metadata={"kind": "generic"}))
    assert found is not None and found.reason == "rule 3: metadata.kind~/^gen/"


def test_unknown_option_keys_are_rejected() -> None:
    with pytest.raises(msgspec.ValidationError, match="routes"):
        options(routes=[{"name": "general", "target": "cheap", "exampels": []}])


def test_check_lists_every_problem_with_its_key() -> None:
    opts = options(
        default="nope",
        routes=[
            {"name": "general", "target": "cheap"},
            {"name": "general", "deployments": ["d1"]},
            {"name": "custom", "target": "x", "deployments": ["d"]},
            {"name": "empty", "deployments": []},
        ],
        rules=[
            {"route": "ghost", "regex": "("},
            {"route": "general"},
            {"route": "general", "equals": "x", "regex": "y"},
            {"route": "general", "header": "h", "metadata": "m", "equals": "a", "matches": "b"},
            {"route": "general", "keywords": [], "min_chars": 5, "max_chars": 2},
        ],
    )
    problems = check(opts)
    expected = [
        "strategy_options.routes[1].name: 'general' is already used by routes[0]",
        "strategy_options.routes[2]: set exactly one of 'target' (a model name) and 'deployments' (deployment ids)",
        "strategy_options.routes[2].examples: required, since there are no built-in examples for 'custom'",
        "strategy_options.routes[3].deployments: at least one deployment id",
        "strategy_options.routes[3].examples: required",
        "strategy_options.default: 'nope' is not a route name",
        "strategy_options.rules[0].route: 'ghost' is not a route name",
        "strategy_options.rules[0].regex: not a valid regular expression",
        "strategy_options.rules[1]: no condition",
        "strategy_options.rules[2]: 'equals'/'matches' need a 'header' or 'metadata' to test",
        "strategy_options.rules[3]: 'header' and 'metadata' in one rule",
        "strategy_options.rules[3]: 'equals' and 'matches' in one rule",
        "strategy_options.rules[4].keywords: expected a list of non-blank words",
        "strategy_options.rules[4]: min_chars 5 > max_chars 2",
    ]
    for prefix in expected:
        assert any(p.startswith(prefix) for p in problems), (prefix, problems)
    assert len(problems) == len(expected)
