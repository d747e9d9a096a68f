"""Precision and recall of the semantic cache on the labelled pairs (bench/cache/pairs.py).

A pair is predicted a hit when the cosine of the two prompts' embeddings is at least the threshold
*and* the guard passes (stellwerk.pipeline.cache.guard) -- exactly the cache's decision. Prints a
Markdown table per embedder size, with the embedder alone for comparison, and the pairs the
cache gets wrong at the default threshold.

    .venv/bin/python bench/cache/semantic_quality.py [--dims 64,128,256]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from pairs import PAIRS

from stellwerk.compose import SEMANTIC_EMBEDDER
from stellwerk.pipeline.cache import DEFAULT_THRESHOLD, guard
from stellwerk.routing.task.embedders import load_wordllama

THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.93, 0.94, 0.95, 0.97)


def scores(dim: int) -> np.ndarray:
    embedder = load_wordllama(dim)
    a = embedder.embed([p[0] for p in PAIRS])
    b = embedder.embed([p[1] for p in PAIRS])
    return np.einsum("ij,ij->i", a, b)


def figures(predicted: np.ndarray, labels: np.ndarray) -> tuple[float, float, int, int]:
    tp = int((predicted & labels).sum())
    fp = int((predicted & ~labels).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / int(labels.sum()), tp, fp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dims", default="64,128,256")
    args = parser.parse_args()
    labels = np.array([p[2] for p in PAIRS])
    guarded = np.array([guard(p[0], p[1]) for p in PAIRS])
    counts = Counter(c for *_, c in PAIRS)
    print(f"{len(PAIRS)} pairs: {int(labels.sum())} should hit, {int((~labels).sum())} must not "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})\n")
    print(f"guard alone: passes {int((guarded & labels).sum())} of {int(labels.sum())} paraphrases and "
          f"{int((guarded & ~labels).sum())} of {int((~labels).sum())} near-duplicates\n")
    for dim in (int(d) for d in args.dims.split(",")):
        cos = scores(dim)
        print(f"### wordllama {dim} dimensions{' (the default)' if dim == SEMANTIC_EMBEDDER else ''}\n")
        print("| threshold | precision | recall | hits (true/false) | embedder alone: precision | recall |")
        print("|---|---|---|---|---|---|")
        for t in THRESHOLDS:
            p, r, tp, fp = figures((cos >= t) & guarded, labels)
            p0, r0, _, _ = figures(cos >= t, labels)
            mark = " **(default)**" if abs(t - DEFAULT_THRESHOLD) < 1e-9 else ""
            print(f"| {t:.2f}{mark} | {p:.3f} | {r:.3f} | {tp}/{fp} | {p0:.3f} | {r0:.3f} |")
        print()
        if dim == SEMANTIC_EMBEDDER:
            predicted = (cos >= DEFAULT_THRESHOLD) & guarded
            wrong = [(PAIRS[i], float(cos[i])) for i in np.flatnonzero(predicted != labels)]
            false_hits = [w for w in wrong if not w[0][2]]
            print(f"false hits at {DEFAULT_THRESHOLD}: {len(false_hits)}")
            for (a, b, _, category), score in false_hits:
                print(f"- [{category}] {a!r} / {b!r} ({score:.3f})")
            missed = Counter(w[0][3] for w in wrong if w[0][2])
            print(f"paraphrases missed at {DEFAULT_THRESHOLD}: {sum(missed.values())} ({dict(missed)})\n")


if __name__ == "__main__":
    main()
