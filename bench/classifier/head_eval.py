"""The built-in calibrated head on the held-out set: accuracy, recall per class and language, the
coverage-vs-precision curve of ``abstain_below``, time per prompt and start-up.

    .venv/bin/python bench/classifier/head_eval.py            # the shipped head
    .venv/bin/python bench/classifier/head_eval.py --cv       # also: grouped 5-fold CV on train.jsonl

Held-out = ``heldout.jsonl`` (see make_sets.py: templates and pasted material never used in training,
plus the project's hand-written eval_set.jsonl). The head is used as shipped: default options
(``abstain_below`` varied for the curve, ``min_margin`` 0, ``translation_needs_ask`` on).
Time = thread CPU time of ``CalibratedClassifier.predict`` per prompt (features, head, gate),
every prompt x 3 passes after a warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from importlib.resources import files
from pathlib import Path

import numpy as np

from stellwerk.routing.task.calibrated import CalibratedClassifier
from stellwerk.routing.task.embedders import load_embedder
from stellwerk.routing.task.features import Featurizer
from stellwerk.routing.task.head import LinearHead, train_weights

HERE = Path(__file__).resolve().parent


def load(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def grouped_cv(featurizer: Featurizer, folds: int = 5) -> None:
    rows = load("train.jsonl")
    x = featurizer.matrix([str(r["prompt"]) for r in rows])
    classes = sorted({str(r["label"]) for r in rows})
    y = np.array([classes.index(str(r["label"])) for r in rows])
    groups = sorted({str(r["group"]) for r in rows})
    perm = np.random.default_rng(0).permutation(len(groups))
    fold = perm[np.array([groups.index(str(r["group"])) for r in rows])] % folds
    pred = np.zeros(len(y), dtype=np.int64)
    for k in range(folds):
        train = fold != k
        w, b = train_weights(x[train], y[train], len(classes))
        pred[~train] = (x[~train] @ w + b).argmax(axis=1)
    ok = pred == y
    non_en = np.array([r["lang"] != "en" for r in rows])
    print(f"grouped {folds}-fold CV on train.jsonl ({len(rows)} prompts, {len(groups)} templates): "
          f"{ok.mean():.1%} overall, {ok[non_en].mean():.1%} non-English, "
          f"lowest recall {min(ok[y == i].mean() for i in range(len(classes))):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cv", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    head = LinearHead.load(str(files("stellwerk.routing.task").joinpath("head.npz")))
    loaded_head = time.perf_counter()
    featurizer = Featurizer(load_embedder(head.spec.embedder), head.spec)
    clf = CalibratedClassifier(featurizer, head)
    clf.predict("warm up")
    ready = time.perf_counter()
    print(f"start-up: head {1000 * (loaded_head - start):.0f} ms, embedder + first prompt "
          f"{1000 * (ready - loaded_head):.0f} ms")
    rows = load("heldout.jsonl")
    texts = [str(r["prompt"]) for r in rows]
    preds = [clf.predict(t) for t in texts]
    ok = np.array([p.route == r["label"] for p, r in zip(preds, rows, strict=True)])
    prob = np.array([p.probability for p in preds])
    non_en = np.array([r["lang"] != "en" for r in rows])
    multi = np.array([bool(r["multiline"]) for r in rows])
    project = np.array([str(r["group"]).startswith("project/") for r in rows])
    print(f"held-out: {len(rows)} prompts ({non_en.mean():.0%} non-English, {multi.mean():.0%} multi-line)")
    print(f"accuracy {ok.mean():.1%}; non-English {ok[non_en].mean():.1%}; English {ok[~non_en].mean():.1%}; "
          f"multi-line {ok[multi].mean():.1%}; project eval_set {ok[project].mean():.1%}")
    by: dict[str, list[bool]] = defaultdict(list)
    for r, good in zip(rows, ok, strict=True):
        by[f"label {r['label']}"].append(bool(good))
        by[f"lang {r['lang']}"].append(bool(good))
    print("| group | n | recall |\n|---|---|---|")
    for key in sorted(by):
        print(f"| {key} | {len(by[key])} | {np.mean(by[key]):.1%} |")
    translation_picks = np.array([p.route == "translation" for p in preds])
    right_translation = translation_picks & ok
    print(f"translation precision {right_translation.sum() / max(1, translation_picks.sum()):.1%} "
          f"({translation_picks.sum()} picks)")
    print("| abstain_below | routed | precision on routed |\n|---|---|---|")
    for t in (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        routed = prob >= t
        print(f"| {t:.2f} | {routed.mean():.1%} | {ok[routed].mean():.1%} |")
    bins = np.clip((prob * 10).astype(int), 0, 9)
    print("calibration (p of the chosen route: n, accuracy): " + ", ".join(
        f"{b / 10:.1f}-{(b + 1) / 10:.1f}: {int((bins == b).sum())}, {ok[bins == b].mean():.0%}"
        for b in range(10) if (bins == b).any()))
    for text in texts:
        clf.predict(text)
    times = []
    for _ in range(3):
        for text in texts:
            t0 = time.thread_time_ns()
            clf.predict(text)
            times.append(time.thread_time_ns() - t0)
    print(f"per prompt: p50 {np.percentile(times, 50) / 1000:.0f} us, p99 {np.percentile(times, 99) / 1000:.0f} us")
    if args.cv:
        grouped_cv(featurizer)


if __name__ == "__main__":
    main()
