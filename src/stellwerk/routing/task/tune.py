"""``stellwerk tune-task-router``: fit a calibrated head on a team's own labelled prompts.

    stellwerk tune-task-router --examples prompts.jsonl --out team-head.npz

``prompts.jsonl`` has one ``{"prompt": "...", "label": "code"}`` per line (other keys ignored; an optional
``"group"`` keeps near-duplicates in one cross-validation fold) (at least two labels, at least
``MIN_PER_LABEL`` prompts per label). The labels become route names: name the file in the config with
``strategy_options.head: team-head.npz`` and give every label you want routed a route of that name.
The command prints the cross-validated accuracy per label and the coverage at a few ``abstain_below``
values, measured on out-of-fold predictions (each prompt scored by a head that did not train on it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from .embedders import load_embedder
from .features import FeatureSpec, Featurizer
from .head import LinearHead, fit_head

__all__ = ["MIN_PER_LABEL", "Example", "read_examples", "run", "tune"]

MIN_PER_LABEL = 5


class Example(msgspec.Struct, frozen=True):
    prompt: str
    label: str
    group: str | None = None
    """Optional: prompts of one group (say, made from one template) are kept in one cross-validation fold."""


def read_examples(path: str | Path) -> list[Example]:
    """The examples of a JSONL file; ``ValueError`` naming the line of the first problem."""
    examples: list[Example] = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                example = msgspec.json.decode(line, type=Example)
            except (msgspec.DecodeError, msgspec.ValidationError) as err:
                raise ValueError(f"{path}:{number}: expected {{\"prompt\": str, \"label\": str}} ({err})") from err
            if not example.prompt.strip() or not example.label.strip():
                raise ValueError(f"{path}:{number}: blank prompt or label")
            examples.append(example)
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.label] = counts.get(example.label, 0) + 1
    if len(counts) < 2:
        raise ValueError(f"{path}: expected at least two different labels, got {sorted(counts)}")
    few = sorted(label for label, n in counts.items() if n < MIN_PER_LABEL)
    if few:
        raise ValueError(f"{path}: at least {MIN_PER_LABEL} prompts per label; too few for {', '.join(few)}")
    return examples


def tune(examples: Sequence[Example], spec: FeatureSpec, *, folds: int = 5) -> tuple[LinearHead, dict[str, object]]:
    """The fitted head and a report of its out-of-fold accuracy (overall, per label, by ``abstain_below``)."""
    featurizer = Featurizer(load_embedder(spec.embedder), spec)
    x = featurizer.matrix([e.prompt for e in examples])
    labels = [e.label for e in examples]
    head, oof = fit_head(x, labels, spec, folds=folds, groups=[e.group for e in examples])
    y = np.array([head.classes.index(label) for label in labels])
    best, p = oof.argmax(axis=1), oof.max(axis=1)
    right = best == y
    recall = {c: float(right[y == i].mean()) for i, c in enumerate(head.classes)}
    curve = [{"abstain_below": t, "routed": float((p >= t).mean()),
              "precision": float(right[p >= t].mean()) if (p >= t).any() else None} for t in (0.0, 0.4, 0.6, 0.8, 0.9)]
    return head, {"examples": len(examples), "temperature": head.temperature, "accuracy": float(right.mean()),
                  "recall": recall, "coverage": curve}


def run(args: argparse.Namespace) -> int:
    try:
        if args.folds < 2:
            raise ValueError(f"--folds must be at least 2, got {args.folds}")
        examples = read_examples(args.examples)
        head, report = tune(examples, FeatureSpec(embedder=args.embedder), folds=args.folds)
        head.save(args.out)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({len(head.classes)} labels: {', '.join(head.classes)})", file=sys.stderr)
    return 0
