"""The real built-in embedder: loads offline, classifies clear prompts, and keeps its measured accuracy.

The accuracy floor is the accuracy measured by ``bench/classifier/run.py`` with the default
options (82.5 %) minus a margin; a broken model, tokenizer or scoring rule falls far below it.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import msgspec
import numpy as np
import pytest

from stellwerk.routing.task import TaskOptions, TaskRequest, TaskRouter, builtin_examples, load_embedder, load_wordllama
from stellwerk.routing.task.embedders import Embedder

EVAL_SET = Path(__file__).resolve().parents[2] / "bench" / "classifier" / "eval_set.jsonl"
ACCURACY_FLOOR = 0.75
"""Measured 82.5 % (337 prompts, 9 labels); chance is 11 %."""


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    with pytest.MonkeyPatch.context() as mp:

        def no_network(*args: object, **kwargs: object) -> None:
            raise AssertionError("the embedder tried to use the network")

        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket.socket, "connect_ex", no_network)
        mp.setattr(socket, "create_connection", no_network)
        mp.setattr(socket, "getaddrinfo", no_network)
        return load_wordllama()


@pytest.fixture(scope="module")
def router(embedder: Embedder) -> TaskRouter:
    options = {"default": "general", "head": "none",  # the nearest-example classifier; the head: test_task_builtin_head
               "routes": [{"name": n, "target": f"m-{n}"} for n in builtin_examples()]}
    return TaskRouter.from_options(msgspec.convert(options, TaskOptions), embedder)


def test_vectors_are_unit_length_and_deterministic(embedder: Embedder) -> None:
    vectors = embedder.embed(["Write a haiku about rain.", "Write a haiku about rain.", ""])
    assert vectors.shape == (3, 256) and vectors.dtype == np.float32
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(vectors[0], vectors[1])
    assert not vectors[2].any()


def test_embedder_specs() -> None:
    assert load_embedder("wordllama:64").dim == 64
    with pytest.raises(ValueError, match="unknown embedder"):
        load_embedder("bert")


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("Write a Rust function that reverses a vector in place.", "code"),
        ("What is the integral of 1/x from 1 to e?", "math"),
        ("Translate into Italian: where is the train station?", "translation"),
        ("Write a poem about a lighthouse in winter.", "creative"),
        ("hey! how's your day going?", "chitchat"),
    ],
)
def test_clear_prompts(router: TaskRouter, text: str, route: str) -> None:
    decision = router.route(TaskRequest.of(text))
    assert (decision.route, decision.source) == (route, "classifier"), decision.reason


def test_accuracy_on_the_evaluation_set(router: TaskRouter) -> None:
    rows = [json.loads(line) for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 300
    correct = sum(router.route(TaskRequest.of(r["text"])).route == r["label"] for r in rows)
    assert correct / len(rows) >= ACCURACY_FLOOR


def test_builtin_examples_do_not_overlap_the_evaluation_set() -> None:
    texts = {json.loads(line)["text"].strip().lower() for line in EVAL_SET.read_text(encoding="utf-8").splitlines() if line}
    examples = {e.strip().lower() for v in builtin_examples().values() for e in v}
    assert not texts & examples
