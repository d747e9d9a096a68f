"""The ``task`` strategy's options: the YAML under a model's ``strategy_options``.

    - name: auto
      strategy: task
      strategy_options:
        default: general              # route when no rule matches and the classifier is unsure
        routes:
          - {name: code, target: coder}            # built-in examples for "code"
          - {name: math, target: reasoning, keywords: ["prove that"]}
          - {name: support, target: cheap, examples: ["Where is my order?", "I want a refund"]}
          - {name: general, target: cheap}
        rules:
          - {header: x-team, equals: data, route: code}
          - {regex: "(?i)\\btranslate\\b.*\\binto\\b", route: translation}

Unknown keys are errors. :func:`check` lists every problem as ``key: what was
expected``; cross-references to other models and to deployment ids are the
config loader's to check (:attr:`TaskRouteOptions.target`, ``deployments``).
"""

from __future__ import annotations

import re
from importlib.resources import files
from typing import Annotated, Literal

import msgspec
import yaml
from msgspec import Meta, Struct

__all__ = ["HEAD_KEYWORDS", "TaskOptions", "TaskRouteOptions", "TaskRuleOptions", "builtin_examples", "check", "head_source"]

HEAD_KEYWORDS = ("auto", "builtin", "none")

RouteName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


class TaskRouteOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A named destination for requests of one kind. Exactly one of ``target`` and ``deployments``."""

    name: RouteName
    """Unique among the routes; shown in ``x-stellwerk-route``. Required."""
    target: str | None = None
    """Another model name of this gateway that answers these requests."""
    deployments: list[str] | None = None
    """Or: the ids of this model's deployments that answer them (tried with the model's other settings)."""
    examples: list[str] | None = None
    """Example prompts for the classifier. Default: the built-in examples for ``name`` (code, math,
    summarization, translation, creative, chitchat, extraction, classification, general); required for
    other names. ``[]`` = this route is chosen only by rules, keywords or as the default."""
    keywords: list[str] = []
    """Words or phrases that pick this route when found in the prompt as whole words, ignoring case;
    checked after ``rules`` and before the classifier, routes in listed order. Default none."""


class TaskRuleOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A rule: the route, and conditions that must all hold. At least one condition.

    ``equals``/``matches`` test the value of ``header`` or ``metadata`` (one of them); without
    either, the header or key only has to be present.
    """

    route: str
    """The route chosen when the rule matches. Required."""
    header: str | None = None
    """A request header's name (any case)."""
    metadata: str | None = None
    """A key of the request's ``metadata`` object."""
    equals: str | None = None
    """The header's or key's value equals this (ignoring case and surrounding blanks)."""
    matches: str | None = None
    """The header's or key's value matches this regular expression (searched, Python syntax)."""
    regex: str | None = None
    """This regular expression is found in the prompt (the last user message). Use ``(?i)`` to ignore case."""
    keywords: list[str] | None = None
    """Any of these words or phrases occurs in the prompt (whole words, ignoring case)."""
    all_keywords: list[str] | None = None
    """All of these occur in the prompt."""
    min_chars: Annotated[int, Meta(ge=0)] | None = None
    """The prompt has at least this many characters."""
    max_chars: Annotated[int, Meta(ge=0)] | None = None
    """The prompt has at most this many characters."""


class TaskOptions(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Route each request to one of ``routes``: hint, then ``rules``, then route ``keywords``, then the
    semantic classifier, then ``default`` — the first that decides wins."""

    routes: Annotated[list[TaskRouteOptions], Meta(min_length=1)]
    """The destinations. At least one. Required."""
    default: str
    """The route taken when nothing else decides (no rule matched; classifier below ``threshold``). Required."""
    rules: list[TaskRuleOptions] = []
    """Tried in order before anything else but the hint; the first that matches wins. Default none."""
    threshold: Annotated[float, Meta(ge=-1.0, le=1.0)] = 0.15
    """Lowest classifier score (cosine similarity, see ``scoring``) that picks a route; below it, ``default``.
    Scores depend on the embedder: 0.15 suits ``wordllama`` (1% of the evaluation prompts score lower; see
    ``bench/classifier``). Default 0.15."""
    hint_header: str | None = "x-stellwerk-task"
    """A request header whose value, if it is a route name, picks that route first. ``null`` = off.
    Default ``x-stellwerk-task``."""
    hint_metadata: str | None = "stellwerk_task"
    """The same for a key of the request's ``metadata``. ``null`` = off. Default ``stellwerk_task`` (namespaced:
    OpenAI's ``metadata`` is the client's own data, where a plain ``task`` key means something else)."""
    embedder: str = "wordllama"
    """``wordllama`` (built in, 256 dimensions; ``wordllama:128``/``wordllama:64`` for fewer) or
    ``model2vec:PATH`` (a Model2Vec model directory on disk). Nothing is downloaded. Default ``wordllama``."""
    scoring: Literal["topk", "max", "centroid"] = "topk"
    """How a route's examples are scored: mean of the ``top_k`` most similar (``topk``), the most similar
    one (``max``) or the mean of all (``centroid``). Default ``topk`` (most accurate in the benchmark)."""
    top_k: Annotated[int, Meta(ge=1, le=50)] = 3
    """``k`` for ``topk`` (capped by the smallest route's number of examples). Default 3."""
    focus_words: Annotated[int, Meta(ge=0, le=256)] = 6
    """Prompts longer than twice this many words are also scored on their first and last ``focus_words``
    words (where instructions usually are) and the scores averaged. 0 = off. Default 6."""
    max_chars: Annotated[int, Meta(ge=16, le=1_000_000)] = 4000
    """Longer prompts are classified on their first and last ``max_chars / 2`` characters. Default 4000."""
    include_system: bool = False
    """Classify the system prompt together with the last user message. Default false (user message only)."""
    head: str = "auto"
    """The calibrated classifier (a linear head over embeddings and hashed words; see ``bench/classifier``):
    ``builtin`` (shipped; trained for the nine built-in route names in eight languages), a ``.npz`` file
    written by ``stellwerk tune-task-router`` (its labels are route names), or ``none`` (the nearest-example
    classifier with ``threshold``). ``auto``: ``builtin`` unless a route has its own ``examples``, then
    ``none``. Default ``auto``."""
    abstain_below: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.4
    """With a head: the lowest probability that picks a route; below it, ``default`` (``x-stellwerk-route``
    says ``unsure``). Higher = fewer prompts routed, more of them right (curve in ``bench/RESULTS.md``).
    Default 0.4."""
    min_margin: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.0
    """With a head: the best route's probability must exceed the runner-up's by at least this, else
    ``default``. Default 0 (off)."""
    translation_needs_ask: bool = True
    """With a head: ``translation`` only when the prompt asks to translate ("translate", "übersetze",
    "traduis", "翻訳して", "how do you say ..."); a prompt merely written in another language goes to its
    task. Default true."""


def builtin_examples() -> dict[str, list[str]]:
    """The example prompts shipped with Stellwerk (``default_routes.yaml``), by route name."""
    text = files(__package__).joinpath("default_routes.yaml").read_text(encoding="utf-8")
    return msgspec.convert(yaml.safe_load(text), dict[str, list[str]])


def head_source(options: TaskOptions) -> str | None:
    """The head file ``options`` ask for (the built-in one's path for ``builtin``), or None for no head."""
    if options.head == "none" or (options.head == "auto" and any(r.examples for r in options.routes)):
        return None
    if options.head in ("auto", "builtin"):
        return str(files(__package__).joinpath("head.npz"))
    return options.head


def check(options: TaskOptions, prefix: str = "strategy_options") -> list[str]:
    """Every problem in ``options`` that the types cannot express, each as ``key: what was expected``."""
    problems: list[str] = []
    builtin = builtin_examples()
    names = [r.name for r in options.routes]
    for i, route in enumerate(options.routes):
        key = f"{prefix}.routes[{i}]"
        if names.index(route.name) != i:
            problems.append(f"{key}.name: {route.name!r} is already used by routes[{names.index(route.name)}]")
        if (route.target is None) == (route.deployments is None):
            problems.append(f"{key}: set exactly one of 'target' (a model name) and 'deployments' (deployment ids)")
        if route.deployments is not None and not route.deployments:
            problems.append(f"{key}.deployments: at least one deployment id")
        if route.examples is None and route.name not in builtin:
            problems.append(
                f"{key}.examples: required, since there are no built-in examples for {route.name!r} "
                f"(built in: {', '.join(sorted(builtin))}); use [] for a route chosen only by rules"
            )
        if route.examples and any(not e.strip() for e in route.examples):
            problems.append(f"{key}.examples: blank example")
        if any(not w.strip() for w in route.keywords):
            problems.append(f"{key}.keywords: blank keyword")
    if options.head not in HEAD_KEYWORDS and not options.head.endswith(".npz"):
        problems.append(f"{prefix}.head: expected auto, builtin, none or a .npz file written by "
                        f"'stellwerk tune-task-router', got {options.head!r}")
    if options.default not in names:
        problems.append(f"{prefix}.default: {options.default!r} is not a route name (routes: {', '.join(names)})")
    for i, rule in enumerate(options.rules):
        problems.extend(_check_rule(rule, f"{prefix}.rules[{i}]", names))
    return problems


def _check_rule(rule: TaskRuleOptions, key: str, names: list[str]) -> list[str]:
    problems: list[str] = []
    if rule.route not in names:
        problems.append(f"{key}.route: {rule.route!r} is not a route name (routes: {', '.join(names)})")
    if rule.header is not None and rule.metadata is not None:
        problems.append(f"{key}: 'header' and 'metadata' in one rule; use two rules")
    if rule.equals is not None and rule.matches is not None:
        problems.append(f"{key}: 'equals' and 'matches' in one rule; use one")
    if (rule.equals is not None or rule.matches is not None) and rule.header is None and rule.metadata is None:
        problems.append(f"{key}: 'equals'/'matches' need a 'header' or 'metadata' to test")
    conditions = (rule.header, rule.metadata, rule.regex, rule.keywords, rule.all_keywords, rule.min_chars, rule.max_chars)
    if all(c is None for c in conditions):
        problems.append(
            f"{key}: no condition; expected at least one of header, metadata, regex, keywords, all_keywords, min_chars, max_chars"
        )
    for field in ("matches", "regex"):
        pattern = getattr(rule, field)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as e:
                problems.append(f"{key}.{field}: not a valid regular expression ({e})")
    for field in ("keywords", "all_keywords"):
        words = getattr(rule, field)
        if words is not None and (not words or any(not w.strip() for w in words)):
            problems.append(f"{key}.{field}: expected a list of non-blank words")
    if rule.min_chars is not None and rule.max_chars is not None and rule.min_chars > rule.max_chars:
        problems.append(f"{key}: min_chars {rule.min_chars} > max_chars {rule.max_chars}")
    return problems
