"""The semantic classifier and the task router, with a deterministic fake embedder.

The fake embedder maps each of a few marker words to one axis; a text's vector is
the normalized count of its markers, so similarities are exact and easy to reason about.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt
import pytest

from stellwerk.routing.task import SemanticClassifier, TaskOptions, TaskRequest, TaskRouter

AXES = ("code", "math", "poem", "hello")


class FakeEmbedder:
    name = "fake"
    dim = len(AXES) + 1  # the last axis: any other word

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, AXES.index(word) if word in AXES else len(AXES)] += 1
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


ROUTES = {"code": ["code", "code code", "code x"], "math": ["math", "math math", "math y"], "empty": []}


def classifier(**kw: object) -> SemanticClassifier:
    defaults: dict[str, object] = {"threshold": 0.5, "default": "general", "focus_words": 0}
    return SemanticClassifier(FakeEmbedder(), ROUTES, **{**defaults, **kw})  # type: ignore[arg-type]


def test_nearest_route_wins_with_runner_up() -> None:
    result = classifier().classify("code")
    assert (result.route, result.nearest, result.matched) == ("code", "code", True)
    assert result.score == pytest.approx((1 + 1 + 2**-0.5) / 3)
    assert result.runner_up == "math" and result.runner_up_score == pytest.approx(0.0)


def test_below_threshold_gives_default_but_reports_nearest() -> None:
    result = classifier(threshold=0.9).classify("code zzz")  # cos = 1/sqrt(2) with "code", "code code"
    assert (result.route, result.nearest, result.matched) == ("general", "code", False)
    assert classifier(threshold=0.9, default=None).classify("code zzz").route is None


def test_routes_without_examples_are_not_candidates() -> None:
    c = classifier()
    assert c.routes == ("code", "math")
    with pytest.raises(ValueError):
        SemanticClassifier(FakeEmbedder(), {"a": []}, threshold=0.1)


def test_text_with_no_known_token_scores_zero() -> None:
    result = classifier().classify("")
    assert result.score == 0.0 and result.route == "general"


@pytest.mark.parametrize(
    ("scoring", "k", "expected"),
    [("max", 3, 1.0), ("topk", 1, 1.0), ("topk", 2, 1.0), ("topk", 9, (2 + 2**-0.5) / 3), ("centroid", 3, None)],
)
def test_scoring_rules(scoring: str, k: int, expected: float | None) -> None:
    score = classifier(scoring=scoring, k=k).classify("math").score
    if expected is None:  # cosine with the normalized mean of the three example vectors
        vectors = FakeEmbedder().embed(ROUTES["math"])
        centroid = vectors.sum(axis=0) / np.linalg.norm(vectors.sum(axis=0))
        expected = float(centroid[AXES.index("math")])
    # float32 matrix products: BLAS may sum in another order from one run to the next (threads, alignment),
    # so the last bits differ; 1e-5 is ~100 float32 ulps, far below any difference between routes.
    assert score == pytest.approx(expected, rel=1e-5)


def test_focus_windows_weigh_the_start_and_end_of_long_prompts() -> None:
    text = "code " + "math " * 10 + "code"  # 12 words: mostly math, but the instruction words are code
    assert classifier(focus_words=0).classify(text).nearest == "math"
    focused = classifier(focus_words=1)
    assert focused.views(text) == [text, "code", "code"]
    assert focused.classify(text).nearest == "code"
    assert focused.views("code math") == ["code math"]  # short: scored whole only


def test_long_prompts_are_cut_to_head_and_tail() -> None:
    c = classifier(max_chars=10)
    assert c.views("abcdefghijklmnopqrstuvwxyz") == ["abcde vwxyz"]


def task_options(**raw: object) -> TaskOptions:
    base: dict[str, object] = {
        "default": "general",
        "threshold": 0.5,
        "focus_words": 0,
        "routes": [
            {"name": "code", "target": "coder", "examples": ROUTES["code"], "keywords": ["stack trace"]},
            {"name": "math", "target": "reasoner", "examples": ROUTES["math"]},
            {"name": "general", "deployments": ["cheap-1"], "examples": []},
        ],
    }
    return msgspec.convert({**base, **raw}, TaskOptions)


def test_router_order_hint_rules_keywords_classifier_default() -> None:
    router = TaskRouter.from_options(task_options(rules=[{"regex": "(?i)^prove", "route": "math"}]), FakeEmbedder())
    cases = [
        (
            TaskRequest.of("code", headers={"x-stellwerk-task": "general"}),
            "general",
            "hint",
            "task general: hint header x-stellwerk-task",
        ),
        (TaskRequest.of("Prove code stack trace"), "math", "rule", "task math: rule 1: prompt~/(?i)^prove/"),
        (TaskRequest.of("a stack trace in math"), "code", "keywords", "task code: route code keywords: keyword 'stack trace'"),
        (TaskRequest.of("math"), "math", "classifier", "task math: classifier 0.90 (next code 0.00)"),
        (TaskRequest.of("poem"), "general", "default", "task general: default (classifier: code 0.00 < 0.50)"),
    ]
    for request, route, source, reason in cases:
        decision = router.route(request)
        assert (decision.route, decision.source, decision.reason) == (route, source, reason)
    assert router.routes["general"].deployments == ["cheap-1"]


def test_router_can_classify_with_the_system_prompt() -> None:
    opts = task_options(include_system=True, threshold=0.3)
    assert TaskRouter.from_options(opts, FakeEmbedder()).route(TaskRequest.of("poem", system="math")).route == "math"
    plain = TaskRouter.from_options(task_options(threshold=0.3), FakeEmbedder())
    assert plain.route(TaskRequest.of("poem", system="math")).route == "general"


def test_router_without_examples_needs_no_embedder() -> None:
    opts = msgspec.convert(
        {
            "default": "b",
            "routes": [
                {"name": "a", "target": "x", "examples": [], "keywords": ["alpha"]},
                {"name": "b", "target": "y", "examples": []},
            ],
        },
        TaskOptions,
    )
    router = TaskRouter.from_options(opts, None)
    assert router.route(TaskRequest.of("alpha")).route == "a"
    assert router.route(TaskRequest.of("beta")).reason == "task b: default (no classifier)"
    with pytest.raises(ValueError, match="embedder is needed"):
        TaskRouter.from_options(task_options(), None)


def test_router_rejects_invalid_options_listing_problems() -> None:
    with pytest.raises(ValueError, match=r"default: 'nope'.*rules\[0\].route"):
        TaskRouter.from_options(task_options(default="nope", rules=[{"route": "ghost", "regex": "x"}]), FakeEmbedder())


def test_reason_is_header_safe() -> None:
    opts = task_options(
        routes=[{"name": "code", "target": "c", "examples": [], "keywords": ["übersetze\nbitte"]}], default="code"
    )
    decision = TaskRouter.from_options(opts, None).route(TaskRequest.of("Übersetze\nbitte das"))
    assert decision.reason.isascii() and "\n" not in decision.reason and decision.reason.isprintable()
    long = task_options(rules=[{"regex": "x" * 300, "route": "code"}])
    reason = TaskRouter.from_options(long, FakeEmbedder()).route(TaskRequest.of("x" * 300)).reason
    assert len(reason) == 200 and reason.endswith("...")


def test_examples_are_embedded_once_at_start_up() -> None:
    embedder = FakeEmbedder()
    router = TaskRouter.from_options(task_options(), embedder)
    start_up = len(embedder.calls)
    router.route(TaskRequest.of("math"))
    router.route(TaskRequest.of("code"))
    assert len(embedder.calls) == start_up + 2
