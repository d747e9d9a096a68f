"""The shipped head (``head: builtin``, the default): offline, multilingual, and it keeps its measured
accuracy on the held-out set of bench/classifier (numbers in bench/RESULTS.md, "Task router").

The floors are the measured figures minus a margin: a broken model file, feature change or gate falls far below.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from stellwerk.routing.task import TaskOptions, TaskRequest, TaskRouter, builtin_examples, load_embedder
from stellwerk.routing.task.head import LinearHead
from stellwerk.routing.task.options import head_source

SETS = Path(__file__).resolve().parents[2] / "bench" / "classifier"
ACCURACY_FLOOR = 0.85
NON_ENGLISH_FLOOR = 0.85
RECALL_FLOOR = 0.70


def load(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (SETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def router() -> TaskRouter:
    options = msgspec.convert({"default": "general", "abstain_below": 0.0,
                               "routes": [{"name": n, "target": f"m-{n}"} for n in builtin_examples()]}, TaskOptions)
    source = head_source(options)
    assert source is not None and source.endswith("head.npz")  # auto = builtin when no route has its own examples
    head = LinearHead.load(source)
    return TaskRouter.from_options(options, load_embedder(head.spec.embedder), head)


def test_the_held_out_set_is_what_the_issue_asks_for() -> None:
    rows = load("heldout.jsonl")
    assert len(rows) >= 900 and {r["label"] for r in rows} == set(builtin_examples())
    assert sum(r["lang"] != "en" for r in rows) >= 0.25 * len(rows)
    assert sum(bool(r["multiline"]) for r in rows) >= 0.25 * len(rows)
    assert {r["lang"] for r in rows} >= {"en", "de", "fr", "es", "pt", "it", "ja", "zh"}
    train = load("train.jsonl")
    assert not {str(r["prompt"]).strip() for r in rows} & {str(r["prompt"]).strip() for r in train}
    assert not {r["group"] for r in rows} & {r["group"] for r in train}


def test_accuracy_on_the_held_out_set(router: TaskRouter) -> None:
    rows = load("heldout.jsonl")
    right = [router.route(TaskRequest.of(str(r["prompt"]))).route == r["label"] for r in rows]
    non_en = [ok for ok, r in zip(right, rows, strict=True) if r["lang"] != "en"]
    assert sum(right) / len(right) >= ACCURACY_FLOOR
    assert sum(non_en) / len(non_en) >= NON_ENGLISH_FLOOR
    for label in builtin_examples():
        hits = [ok for ok, r in zip(right, rows, strict=True) if r["label"] == label]
        assert sum(hits) / len(hits) >= RECALL_FLOOR, label


@pytest.mark.parametrize("text", [
    "¿Qué necesito para renovar el pasaporte en el consulado?",
    "Wie lange hält sich gekochter Reis im Kühlschrank?",
    "Quel temps fera-t-il à Lyon ce week-end, à ton avis ?",
    "この記事を三行でまとめてください：新しい駅が来年開業する。",  # noqa: RUF001
    "请帮我写一首关于大海的短诗。",
])
def test_a_prompt_in_another_language_is_not_a_translation(router: TaskRouter, text: str) -> None:
    assert router.route(TaskRequest.of(text)).route != "translation"


@pytest.mark.parametrize("text", [
    "Translate into Italian: where is the train station?",
    "Übersetze ins Französische: Wir kommen morgen um acht an.",
    "この文を英語に翻訳して：駅はどこですか。",  # noqa: RUF001
])
def test_an_ask_to_translate_is_a_translation(router: TaskRouter, text: str) -> None:
    assert router.route(TaskRequest.of(text)).route == "translation"
