"""The semantic classifier: which route's example utterances is a prompt most like?

At start-up every route's examples are embedded once and kept as one matrix,
padded to the same number of rows per route. Per prompt: one embedding, one
matrix-vector product (cosine similarity with every example, since all vectors
have length 1), then one score per route:

- ``centroid``: cosine with the normalized mean of the route's examples;
- ``max``: the best single example;
- ``topk``: the mean of the route's ``k`` best examples (``k`` capped by the
  smallest route's example count) — robust to one stray example, still sharp.

Long prompts are mostly *content* (a pasted article, a log, code) with a short
*instruction* at the start or the end ("Summarize this: ...", "... translate
that into German"). Averaged over the whole text, the content drowns the
instruction. So a prompt longer than ``2 * focus_words`` words is scored three
times — whole, first ``focus_words`` words, last ``focus_words`` words — and the
three score vectors are averaged. Prompts longer than ``max_chars`` characters
are first cut to their first and last ``max_chars / 2`` characters, which bounds
the cost per prompt.

The best route wins if its score reaches ``threshold``; otherwise the answer is
``default`` (which may be None: "no opinion"). The runner-up is reported so a
decision can be explained (``code 0.62, next math 0.41``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from .embedders import Embedder

__all__ = ["Classification", "Scoring", "SemanticClassifier"]

Scoring = Literal["centroid", "max", "topk"]


class Classification(msgspec.Struct, frozen=True):
    """One decision. ``route`` is ``nearest`` when ``score >= threshold``, else the default."""

    route: str | None
    score: float
    """The nearest route's similarity score (cosine, -1..1)."""
    nearest: str
    runner_up: str | None
    runner_up_score: float | None
    matched: bool
    """True when ``score`` reached the threshold (``route`` is ``nearest``, not the default)."""


class SemanticClassifier:
    """Nearest route by example similarity; see the module docstring for the scoring rules."""

    __slots__ = (
        "_bias",
        "_centroids",
        "_embedder",
        "_k",
        "_names",
        "_padded",
        "default",
        "focus_words",
        "max_chars",
        "scoring",
        "threshold",
    )

    def __init__(
        self,
        embedder: Embedder,
        routes: Mapping[str, Sequence[str]],
        *,
        threshold: float,
        default: str | None = None,
        scoring: Scoring = "topk",
        k: int = 3,
        focus_words: int = 6,
        max_chars: int = 4000,
    ) -> None:
        named = {name: list(examples) for name, examples in routes.items() if examples}
        if not named:
            raise ValueError("the classifier needs at least one route with examples")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if focus_words < 0 or max_chars < 2:
            raise ValueError(f"focus_words must be >= 0 and max_chars >= 2, got {focus_words} and {max_chars}")
        self._embedder = embedder
        self.threshold = threshold
        self.default = default
        self.scoring: Scoring = scoring
        self.focus_words = focus_words
        self.max_chars = max_chars
        self._names = tuple(named)
        most = max(len(examples) for examples in named.values())
        self._k = min(k, min(len(examples) for examples in named.values()))
        padded = np.zeros((len(named), most, embedder.dim), dtype=np.float32)
        mask = np.zeros((len(named), most), dtype=bool)
        for row, examples in enumerate(named.values()):
            padded[row, : len(examples)] = embedder.embed(examples)
            mask[row, : len(examples)] = True
        self._padded = padded.reshape(len(named) * most, embedder.dim)
        # Added to the similarities: -inf on the padding rows of routes with fewer examples than the longest.
        self._bias = np.where(mask, np.float32(0), np.float32(-np.inf)).astype(np.float32)
        self._centroids = _normalize(padded.sum(axis=1))

    @property
    def routes(self) -> tuple[str, ...]:
        """The routes that have examples, in the order given."""
        return self._names

    def views(self, text: str) -> list[str]:
        """The texts that are embedded for one prompt: the (cut) prompt, then its focus windows if long."""
        if len(text) > self.max_chars:
            half = self.max_chars // 2
            text = f"{text[:half]} {text[-half:]}"
        words = text.split()
        n = self.focus_words
        if n == 0 or len(words) <= 2 * n:
            return [text]
        return [text, " ".join(words[:n]), " ".join(words[-n:])]

    def scores(self, text: str) -> npt.NDArray[np.float32]:
        """One similarity score per route in :attr:`routes` order."""
        queries = self._embedder.embed(self.views(text))
        # One matrix-vector product per view: for these sizes much cheaper than one matrix product.
        if self.scoring == "centroid":
            result: npt.NDArray[np.float32] = sum(self._centroids @ q for q in queries) / len(queries)
            return result
        sims = np.stack([self._padded @ q for q in queries]).reshape(len(queries), *self._bias.shape) + self._bias
        if self.scoring == "max":
            best: npt.NDArray[np.float32] = sims.max(axis=2).mean(axis=0)
            return best
        top = np.partition(sims, sims.shape[2] - self._k, axis=2)[:, :, -self._k :]
        mean: npt.NDArray[np.float32] = top.sum(axis=(0, 2)) / np.float32(self._k * len(queries))
        return mean

    def classify(self, text: str) -> Classification:
        scores = self.scores(text)
        order = np.argsort(-scores, kind="stable")  # ties: the route listed first
        best = int(order[0])
        score = float(scores[best])
        second = int(order[1]) if len(order) > 1 else None
        nearest = self._names[best]
        return Classification(
            route=nearest if score >= self.threshold else self.default,
            score=score,
            nearest=nearest,
            runner_up=None if second is None else self._names[second],
            runner_up_score=None if second is None else float(scores[second]),
            matched=score >= self.threshold,
        )


def _normalize(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: npt.NDArray[np.float32] = (rows / norms).astype(np.float32)
    return result
