"""``task``: pick a route for a request — by hint, rules, keywords, then the semantic classifier.

    request ─► hint (x-stellwerk-task / metadata.stellwerk_task names a route)
            ─► rules, in order (header, metadata, regex, keywords, length; all conditions of a rule must hold)
            ─► route keywords, routes in order
            ─► classifier: the calibrated head (probability >= abstain_below, margin >= min_margin,
                translation only on an ask to translate), or without a head the nearest route by
                example similarity (score >= threshold)
            ─► default route

The first step that decides wins, and says why in one line for the
``x-stellwerk-route`` header, e.g. ``task code: classifier p=0.93 (next math 0.03)`` or
``task general: default (unsure: code 0.38 < abstain_below 0.40)``.
Building a :class:`TaskRouter` embeds the route examples once; :meth:`TaskRouter.route`
is pure and takes tens of microseconds (see ``bench/classifier``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec

from .calibrated import CalibratedClassifier
from .classifier import SemanticClassifier
from .embedders import Embedder
from .features import Featurizer
from .head import LinearHead
from .options import TaskOptions, TaskRouteOptions, TaskRuleOptions, builtin_examples, check
from .rules import Condition, Header, HintRule, Keywords, Length, Metadata, PromptRegex, Rule, RuleLike, TaskRequest, first_match

__all__ = ["TaskDecision", "TaskRouter", "build_rules"]

Source = Literal["hint", "rule", "keywords", "classifier", "default"]

_MAX_REASON = 200


class TaskDecision(msgspec.Struct, frozen=True):
    route: str
    reason: str
    """One line, ASCII, at most 200 characters: safe for a response header."""
    source: Source
    score: float | None = None
    """The classifier's score when it was asked (with a head: the best route's probability)."""


class TaskRouter:
    """Combines the steps above. Build it with :meth:`from_options`, or from parts in tests."""

    __slots__ = ("_hint", "_keyword_rules", "_rules", "calibrated", "classifier", "default", "include_system", "routes")

    def __init__(
        self,
        *,
        default: str,
        rules: Sequence[RuleLike] = (),
        keyword_rules: Sequence[RuleLike] = (),
        hint: RuleLike | None = None,
        classifier: SemanticClassifier | None = None,
        calibrated: CalibratedClassifier | None = None,
        include_system: bool = False,
        routes: Mapping[str, TaskRouteOptions] | None = None,
    ) -> None:
        self.calibrated = calibrated
        """The calibrated head; when set, it decides instead of ``classifier``."""
        self.default = default
        self._hint = hint
        self._rules = tuple(rules)
        self._keyword_rules = tuple(keyword_rules)
        self.classifier = classifier
        self.include_system = include_system
        self.routes: Mapping[str, TaskRouteOptions] = dict(routes or {})
        """The configured routes by name (their ``target``/``deployments``), when built from options."""

    @classmethod
    def from_options(cls, options: TaskOptions, embedder: Embedder | None, head: LinearHead | None = None) -> TaskRouter:
        """Validate ``options`` and build the router; ``embedder`` is needed when any route has examples or
        a ``head`` is given (then the head classifies, and route examples are not used).

        Raises ``ValueError`` listing every problem.
        """
        problems = check(options)
        builtin = builtin_examples()
        examples = {r.name: builtin.get(r.name, []) if r.examples is None else r.examples for r in options.routes}
        if embedder is None and (head is not None or any(examples.values())):
            problems.append("strategy_options: routes have examples or a head, so an embedder is needed")
        if problems:
            raise ValueError("; ".join(problems))
        if head is not None and embedder is not None:
            calibrated = CalibratedClassifier(
                Featurizer(embedder, head.spec), head, abstain_below=options.abstain_below,
                min_margin=options.min_margin, translation_needs_ask=options.translation_needs_ask)
            return cls._build(options, None, calibrated)
        classifier = None
        if embedder is not None and any(examples.values()):
            classifier = SemanticClassifier(
                embedder,
                examples,
                threshold=options.threshold,
                default=options.default,
                scoring=options.scoring,
                k=options.top_k,
                focus_words=options.focus_words,
                max_chars=options.max_chars,
            )
        return cls._build(options, classifier, None)

    @classmethod
    def _build(cls, options: TaskOptions, classifier: SemanticClassifier | None,
               calibrated: CalibratedClassifier | None) -> TaskRouter:
        names = frozenset(r.name for r in options.routes)
        hint = None
        if options.hint_header is not None or options.hint_metadata is not None:
            hint = HintRule(names, header=options.hint_header, key=options.hint_metadata)
        return cls(
            default=options.default,
            rules=build_rules(options.rules),
            keyword_rules=[
                Rule(r.name, (Keywords(r.keywords),), label=f"route {r.name} keywords") for r in options.routes if r.keywords
            ],
            hint=hint,
            classifier=classifier,
            calibrated=calibrated,
            include_system=options.include_system,
            routes={r.name: r for r in options.routes},
        )

    def route(self, request: TaskRequest) -> TaskDecision:
        if self._hint is not None and (found := self._hint.match(request)) is not None:
            return _decision(found.route, found.reason, "hint")
        if (found := first_match(self._rules, request)) is not None:
            return _decision(found.route, found.reason, "rule")
        if (found := first_match(self._keyword_rules, request)) is not None:
            return _decision(found.route, found.reason, "keywords")
        text = f"{request.system}\n{request.text}" if self.include_system and request.system else request.text
        if self.calibrated is not None:
            prediction = self.calibrated.predict(text)
            chosen, why = self.calibrated.decide(prediction, self.routes)
            if chosen is None:
                return _decision(self.default, f"default ({why})", "default", prediction.probability)
            return _decision(chosen, why, "classifier", prediction.probability)
        if self.classifier is None:
            return _decision(self.default, "default (no classifier)", "default")
        result = self.classifier.classify(text)
        if result.matched and result.route is not None:
            next_best = f" (next {result.runner_up} {result.runner_up_score:.2f})" if result.runner_up is not None else ""
            return _decision(result.route, f"classifier {result.score:.2f}{next_best}", "classifier", result.score)
        reason = f"default (classifier: {result.nearest} {result.score:.2f} < {self.classifier.threshold:.2f})"
        return _decision(self.default, reason, "default", result.score)


def build_rules(rules: Sequence[TaskRuleOptions]) -> list[Rule]:
    """Rules from validated options (see :func:`~stellwerk.routing.task.options.check`), labelled ``rule 1``, ``rule 2``…"""
    return [Rule(r.route, _conditions(r), label=f"rule {i + 1}") for i, r in enumerate(rules)]


def _conditions(rule: TaskRuleOptions) -> tuple[Condition, ...]:
    pattern = re.compile(rule.matches) if rule.matches is not None else None
    found: list[Condition] = []
    if rule.header is not None:
        found.append(Header(rule.header, equals=rule.equals, pattern=pattern))
    if rule.metadata is not None:
        found.append(Metadata(rule.metadata, equals=rule.equals, pattern=pattern))
    if rule.regex is not None:
        found.append(PromptRegex(re.compile(rule.regex)))
    if rule.keywords is not None:
        found.append(Keywords(rule.keywords, "any"))
    if rule.all_keywords is not None:
        found.append(Keywords(rule.all_keywords, "all"))
    if rule.min_chars is not None or rule.max_chars is not None:
        found.append(Length(rule.min_chars, rule.max_chars))
    return tuple(found)


def _decision(route: str, why: str, source: Source, score: float | None = None) -> TaskDecision:
    return TaskDecision(route, _header_safe(f"task {route}: {why}"), source, score)


def _header_safe(text: str) -> str:
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    cleaned = "".join(c if " " <= c <= "~" else " " for c in ascii_text)
    return cleaned if len(cleaned) <= _MAX_REASON else cleaned[: _MAX_REASON - 3] + "..."
