"""The built-in calibrated head on the held-out set: accuracy, recall per class and language, the
coverage-vs-precision curve of ``abstain_below``, time per prompt and start-up.

    .venv/bin/python bench/classifier/head_eval.py            # the shipped head
    .venv/bin/python bench/classifier/head_eval.py --cv       # also: grouped 5-fold CV on train.jsonl
    .venv/bin/python bench/classifier/head_eval.py --head FILE   # another head (e.g. one just tuned)
    .venv/bin/python bench/classifier/head_eval.py --set probe.jsonl   # another labelled set

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
import zlib
from collections import Counter, defaultdict
from importlib.resources import files
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

from stellwerk.routing.task.calibrated import CalibratedClassifier
from stellwerk.routing.task.embedders import load_embedder
from stellwerk.routing.task.features import Featurizer
from stellwerk.routing.task.gate import asks_translation
from stellwerk.routing.task.head import LinearHead, train_weights

HERE = Path(__file__).resolve().parent


def load(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (HERE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def material_folds(rows: list[dict[str, object]], folds: int) -> npt.NDArray[np.int64]:
    """The fold of each row's pasted piece (from materials*.yaml), -1 for a prompt without one."""
    pieces = [str(p).rstrip("\n") for name in ("materials.yaml", "materials_train.yaml")
              for items in yaml.safe_load((HERE / name).read_text(encoding="utf-8")).values() for p in items]
    found = [next((i for i, p in enumerate(pieces) if p in str(r["prompt"])), -1) for r in rows]
    return np.array([zlib.crc32(pieces[i].encode()) % folds if i >= 0 else -1 for i in found], dtype=np.int64)


def grouped_cv(featurizer: Featurizer, folds: int = 5) -> None:
    """Fold k trains on the prompts of the other templates *and* other pasted pieces, and tests the prompts of
    its own templates whose pasted piece (if any) is one of its own: neither wording nor material is shared.
    A prompt is tested only when its template and its piece fall in the same fold (about a third of them)."""
    rows = load("train.jsonl")
    x = featurizer.matrix([str(r["prompt"]) for r in rows])
    classes = sorted({str(r["label"]) for r in rows})
    y = np.array([classes.index(str(r["label"])) for r in rows])
    template = np.array([zlib.crc32(str(r["group"]).encode()) % folds for r in rows])
    material = material_folds(rows, folds)
    pred = np.full(len(y), -1, dtype=np.int64)
    for k in range(folds):
        train = (template != k) & (material != k)
        test = (template == k) & ((material == k) | (material < 0))
        w, b = train_weights(x[train], y[train], len(classes))
        logits = x[test] @ w + b
        if "translation" in classes:
            asks = np.array([asks_translation(str(rows[i]["prompt"])) for i in np.where(test)[0]], dtype=bool)
            logits[~asks, classes.index("translation")] = -np.inf
        pred[test] = logits.argmax(axis=1)
    tested = pred >= 0
    ok = pred[tested] == y[tested]
    non_en = np.array([r["lang"] != "en" for r in rows])[tested]
    recall = {c: ok[y[tested] == i].mean() for i, c in enumerate(classes)}
    print(f"grouped {folds}-fold CV on train.jsonl (folds by template and by pasted piece; {tested.sum()} of "
          f"{len(rows)} prompts tested): {ok.mean():.1%} overall, {ok[non_en].mean():.1%} non-English; recall "
          + ", ".join(f"{c} {v:.1%}" for c, v in recall.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cv", action="store_true")
    parser.add_argument("--set", default="heldout.jsonl", help="the labelled set to score (default heldout.jsonl)")
    parser.add_argument("--head", default=str(files("stellwerk.routing.task").joinpath("head.npz")))
    args = parser.parse_args()
    start = time.perf_counter()
    head = LinearHead.load(args.head)
    loaded_head = time.perf_counter()
    featurizer = Featurizer(load_embedder(head.spec.embedder), head.spec)
    clf = CalibratedClassifier(featurizer, head)
    clf.predict("warm up")
    ready = time.perf_counter()
    print(f"start-up: head {1000 * (loaded_head - start):.0f} ms, embedder + first prompt "
          f"{1000 * (ready - loaded_head):.0f} ms")
    rows = load(args.set)
    texts = [str(r["prompt"]) for r in rows]
    preds = [clf.predict(t) for t in texts]
    ok = np.array([p.route == r["label"] for p, r in zip(preds, rows, strict=True)])
    prob = np.array([p.probability for p in preds])
    non_en = np.array([r["lang"] != "en" for r in rows])
    multi = np.array(["\n" in str(r["prompt"]).strip() for r in rows])
    project = np.array([str(r.get("group", "")).startswith("project/") for r in rows])
    print(f"{args.set}: {len(rows)} prompts ({non_en.mean():.0%} non-English, {multi.mean():.0%} multi-line)")
    print(f"accuracy {ok.mean():.1%}; non-English {ok[non_en].mean():.1%}; English {ok[~non_en].mean():.1%}; "
          f"multi-line {ok[multi].mean():.1%}" + (f"; project eval_set {ok[project].mean():.1%}" if project.any() else ""))
    by: dict[str, list[bool]] = defaultdict(list)
    for r, good in zip(rows, ok, strict=True):
        by[f"label {r['label']}"].append(bool(good))
        by[f"lang {r['lang']}"].append(bool(good))
    print("| group | n | recall |\n|---|---|---|")
    for key in sorted(by):
        print(f"| {key} | {len(by[key])} | {np.mean(by[key]):.1%} |")
    wrong: dict[str, Counter[str]] = defaultdict(Counter)
    for p, r in zip(preds, rows, strict=True):
        if p.route != r["label"]:
            wrong[str(r["label"])][p.route] += 1
    print("most frequent wrong routes: " + "; ".join(
        f"{label} -> " + ", ".join(f"{route} {n}" for route, n in wrong[label].most_common(2)) for label in sorted(wrong)))
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
