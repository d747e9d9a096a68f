"""The calibrated head, the translation gate and abstention, with a deterministic fake embedder.

The fake embedder puts each marker word on its own axis (see test_task_classifier), and the head's weights
are set by hand on the first embedding block only, so every probability is a softmax that can be written down.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import numpy as np
import pytest
from test_task_classifier import AXES, FakeEmbedder

from stellwerk.routing.task import TaskOptions, TaskRequest, TaskRouter
from stellwerk.routing.task.calibrated import CalibratedClassifier, Prediction
from stellwerk.routing.task.cues import CUES
from stellwerk.routing.task.features import FeatureSpec, Featurizer
from stellwerk.routing.task.gate import asks_translation
from stellwerk.routing.task.head import LinearHead, fit_head, fit_temperature, train_weights

SPEC = FeatureSpec(embedder="fake", word_buckets=8, char_buckets=16, focus_words=3, window_chars=40, ask_buckets=4)
CLASSES = ("code", "math", "translation")
STRENGTH = math.log(18.0)
"""A prompt that is one marker word scores STRENGTH for its class and 0 for the two others: p = 18/20 = 0.9."""


def hand_head(temperature: float = 1.0) -> LinearHead:
    featurizer = Featurizer(FakeEmbedder(), SPEC)
    weights = np.zeros((featurizer.dim, len(CLASSES)), dtype=np.float32)
    weights[AXES.index("code"), 0] = STRENGTH
    weights[AXES.index("math"), 1] = STRENGTH
    weights[AXES.index("poem"), 2] = STRENGTH  # "poem" stands for a prompt the head takes for a translation
    return LinearHead(CLASSES, weights, np.zeros(3, dtype=np.float32), temperature, SPEC)


def classifier(**options: object) -> CalibratedClassifier:
    return CalibratedClassifier(Featurizer(FakeEmbedder(), SPEC), hand_head(), **options)  # type: ignore[arg-type]


def test_features_have_the_documented_blocks_and_are_deterministic() -> None:
    featurizer = Featurizer(FakeEmbedder(), SPEC)
    assert featurizer.dim == 3 * FakeEmbedder.dim + 8 + 16 + 4 + 8 + len(CUES)
    one = featurizer.features("code")
    assert np.array_equal(one[:5], one[5:10]) and np.array_equal(one[:5], one[10:15])  # short: its own windows
    assert np.linalg.norm(one[15:23]) == pytest.approx(1.0) and np.linalg.norm(one[23:39]) == pytest.approx(SPEC.char_scale)
    assert np.linalg.norm(one[39:43]) == pytest.approx(SPEC.ask_scale)
    assert np.linalg.norm(one[43:51]) == pytest.approx(SPEC.ask_scale * SPEC.char_scale)
    cues = dict(zip((name for name, _ in CUES), one[51:], strict=True))
    assert cues["code"] == SPEC.cue_scale and sum(cues.values()) == SPEC.cue_scale
    long = featurizer.features("code x x x x x x math")
    assert long[AXES.index("math")] > 0 and long[5 + AXES.index("math")] == 0 and long[10 + AXES.index("math")] > 0
    assert np.array_equal(featurizer.matrix(["code", "math"])[0], one)
    assert not featurizer.features("")[:15].any()


def test_the_ask_lines_are_the_first_and_last_line_and_pasted_material_does_not_reach_them() -> None:
    featurizer = Featurizer(FakeEmbedder(), SPEC)
    body = "\n".join(["lots of pasted words here"] * 5)
    asked = featurizer.features(f"Summarize this:\n{body}\nthanks")
    pasted = featurizer.features(f"Summarize this:\n{body.replace('pasted', 'other')}\nthanks")
    assert np.array_equal(asked[39:], pasted[39:])  # the middle lines change only the window blocks
    assert not np.array_equal(asked[15:39], pasted[15:39])
    bare = Featurizer(FakeEmbedder(), msgspec.structs.replace(SPEC, ask_buckets=0, cue_scale=0.0))
    assert bare.dim == 39 and np.array_equal(bare.features("code"), featurizer.features("code")[:39])


def test_probabilities_are_a_softmax_of_the_logits_over_the_temperature() -> None:
    featurizer = Featurizer(FakeEmbedder(), SPEC)
    p = hand_head().probabilities(featurizer.features("code"))
    assert p == pytest.approx([0.9, 0.05, 0.05], abs=1e-5)
    hot = hand_head(temperature=2.0).probabilities(featurizer.features("code"))
    assert hot[0] == pytest.approx(math.sqrt(18) / (math.sqrt(18) + 2), abs=1e-5)


def test_a_head_survives_save_and_load(tmp_path: Path) -> None:
    head = hand_head(temperature=1.7)
    head.save(tmp_path / "h.npz")
    loaded = LinearHead.load(tmp_path / "h.npz")
    assert loaded.classes == CLASSES and loaded.spec == SPEC and loaded.temperature == pytest.approx(1.7)
    assert loaded.weights == pytest.approx(head.weights, abs=2e-3)  # stored as float16


@pytest.mark.parametrize("content", [b"not a zip", b""])
def test_loading_something_else_names_the_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.npz").write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.npz: not a task-router head"):
        LinearHead.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "partial.npz", classes=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"partial\.npz: not a task-router head"):
        LinearHead.load(tmp_path / "partial.npz")


def test_shapes_and_classes_are_checked() -> None:
    with pytest.raises(ValueError, match="do not match"):
        LinearHead(("a", "b"), np.zeros((4, 3), np.float32), np.zeros(2, np.float32), 1.0, SPEC)
    with pytest.raises(ValueError, match="two distinct"):
        LinearHead(("a", "a"), np.zeros((4, 2), np.float32), np.zeros(2, np.float32), 1.0, SPEC)
    with pytest.raises(ValueError, match="temperature"):
        LinearHead(("a", "b"), np.zeros((4, 2), np.float32), np.zeros(2, np.float32), 0.0, SPEC)


def separable(n: int = 60) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    labels = ["pos" if row[0] + 0.5 * row[1] > 0 else "neg" for row in x]
    return x, labels


def test_training_learns_a_separable_problem_deterministically() -> None:
    x, labels = separable()
    y = np.array([label == "pos" for label in labels], dtype=np.int64)
    w, b = train_weights(x, y, 2, steps=200)
    assert ((x @ w + b).argmax(axis=1) == y).mean() >= 0.95
    w2, b2 = train_weights(x, y, 2, steps=200)
    assert np.array_equal(w, w2) and np.array_equal(b, b2)


def test_fit_head_reports_out_of_fold_probabilities() -> None:
    x, labels = separable()
    head, oof = fit_head(x, labels, SPEC, folds=4, steps=200)
    assert head.classes == ("neg", "pos")
    assert oof.shape == (60, 2) and oof.sum(axis=1) == pytest.approx(np.ones(60), abs=1e-5)
    assert (np.array(head.classes)[oof.argmax(axis=1)] == np.array(labels)).mean() >= 0.85
    with pytest.raises(ValueError, match="two different labels"):
        fit_head(x, ["pos"] * 60, SPEC)


def test_temperature_softens_overconfident_logits_and_sharpens_timid_ones() -> None:
    y = np.array([0] * 80 + [1] * 20)  # the logits always favour class 0 by 10: right 80% of the time
    logits = np.tile(np.array([10.0, 0.0], dtype=np.float32), (100, 1))
    t = fit_temperature(logits, y)
    p = 1 / (1 + math.exp(-10 / t))
    assert t > 1 and p == pytest.approx(0.8, abs=0.01)
    timid = np.where(np.eye(2, dtype=bool)[np.array([0, 1] * 50)], 0.5, 0.0).astype(np.float32)
    assert fit_temperature(timid, np.array([0, 1] * 50)) < 0.5


@pytest.mark.parametrize("text", [
    "Translate this into German: the meeting moved to Friday.",
    "Übersetze bitte ins Englische: Der Zug ist spät.",
    "Traduis ce texte en anglais : il pleut.",
    "Tradúcelo al español, por favor: the store is closed.",
    "Pode traduzir isso para o inglês?",
    "Traduci in inglese: il treno è in ritardo.",
    "この文を英語に翻訳してください。",
    "把这句话翻译成英文：今天很冷。",  # noqa: RUF001
    "How do you say 'good luck' in Italian?",
    "Wie sagt man 'Feierabend' auf Englisch?",
    "¿Cómo se dice 'cuenta' en inglés?",
    "「ありがとう」はフランス語で何と言いますか？",  # noqa: RUF001
    "\"Il pleut depuis ce matin.\" English please",
    "Ich brauche das auf Italienisch: Der Zug hat Verspätung.",
    "Lo necesito en inglés: el tren llega tarde.",
])
def test_the_gate_sees_an_ask_to_translate_in_any_language(text: str) -> None:
    assert asks_translation(text)


@pytest.mark.parametrize("text", [
    "¿Qué documentos necesito para solicitar el pasaporte?",
    "次の記事を要約してください。",
    "Fass diesen Text zusammen: Der Stadtrat hat beschlossen, die Linie zu verlängern.",
    "Quelle est la capitale de l'Australie ?",
    "Write a haiku about the sea.",
    "Summarize this:\n" + "x " * 400 + "\nTranslate appears only in the middle of the pasted text." + " y" * 400 + "\nThanks!",
])
def test_the_gate_does_not_take_a_language_for_an_ask(text: str) -> None:
    assert not asks_translation(text)


def test_translation_without_an_ask_is_dropped_and_the_rest_renormalized() -> None:
    gated = classifier().predict("poem")
    assert gated.gated and gated.ranked[-1] == ("translation", 0.0)
    assert gated.ranked[0][1] == pytest.approx(0.5) and gated.ranked[1][1] == pytest.approx(0.5)
    asked = classifier().predict("poem translate")
    assert not asked.gated and asked.route == "translation"
    free = classifier(translation_needs_ask=False).predict("poem")
    assert not free.gated and free.route == "translation" and free.probability == pytest.approx(0.9, abs=1e-5)


def test_decide_abstains_below_the_probability_and_the_margin() -> None:
    routes = {"code", "math", "translation"}
    sure = Prediction((("code", 0.9), ("math", 0.06), ("translation", 0.04)))
    assert classifier().decide(sure, routes) == ("code", "classifier p=0.90 (next math 0.06)")
    chosen, why = classifier(abstain_below=0.95).decide(sure, routes)
    assert chosen is None and why == "unsure: code 0.90 < abstain_below 0.95"
    close = Prediction((("code", 0.5), ("math", 0.45), ("translation", 0.05)))
    assert classifier(min_margin=0.0).decide(close, routes)[0] == "code"
    chosen, why = classifier(min_margin=0.1).decide(close, routes)
    assert chosen is None and why == "unsure: code 0.50 - math 0.45 < min_margin 0.10"
    chosen, why = classifier().decide(sure, {"math"})
    assert chosen is None and why == "classifier chose code 0.90, not a route here"


def test_a_featurizer_of_another_size_is_refused() -> None:
    with pytest.raises(ValueError, match="features"):
        CalibratedClassifier(Featurizer(FakeEmbedder(), FeatureSpec(word_buckets=4)), hand_head())


def router(**extra: object) -> TaskRouter:
    options = msgspec.convert({"default": "math", "routes": [
        {"name": "code", "target": "c"}, {"name": "math", "target": "m"}, {"name": "translation", "target": "t"}],
        **extra}, TaskOptions)
    return TaskRouter.from_options(options, FakeEmbedder(), hand_head())


def test_the_router_routes_by_the_head_and_says_why() -> None:
    decision = router().route(TaskRequest.of("code"))  # no ask to translate: p = 0.9 / 0.95
    assert (decision.route, decision.source) == ("code", "classifier")
    assert decision.reason == "task code: classifier p=0.95 (next math 0.05)"
    assert decision.score == pytest.approx(18 / 19, abs=1e-5)
    unsure = router(abstain_below=0.96).route(TaskRequest.of("code"))
    assert (unsure.route, unsure.source) == ("math", "default")
    assert unsure.reason == "task math: default (unsure: code 0.95 < abstain_below 0.96)"
    gated = router(min_margin=0.2).route(TaskRequest.of("poem"))
    assert gated.route == "math" and gated.reason.endswith("< min_margin 0.20; translation without an ask to translate)")
    assert router(rules=[{"keywords": ["code"], "route": "translation"}]).route(TaskRequest.of("code")).source == "rule"


def test_a_head_needs_an_embedder() -> None:
    options = msgspec.convert({"default": "code", "routes": [{"name": "code", "target": "c", "examples": []}]},
                              TaskOptions)
    with pytest.raises(ValueError, match="an embedder is needed"):
        TaskRouter.from_options(options, None, hand_head())
