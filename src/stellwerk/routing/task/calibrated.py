"""The calibrated classifier: features → head probabilities → translation gate → route or abstain.

    prompt ─► Featurizer ─► LinearHead: p(route) ─► gate: no ask to translate? drop ``translation``
           ─► best route with p >= abstain_below and p - p(next) >= min_margin ─► that route
           ─► otherwise: no decision (the strategy takes ``default`` and says why)

Dropping ``translation`` renormalizes the other probabilities (p given "not a translation").
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec
import numpy as np

from .features import Featurizer
from .gate import asks_translation
from .head import LinearHead

__all__ = ["TRANSLATION", "CalibratedClassifier", "Prediction"]

TRANSLATION = "translation"


class Prediction(msgspec.Struct, frozen=True):
    """Routes by probability, best first (at least two), and whether ``translation`` was dropped."""

    ranked: tuple[tuple[str, float], ...]
    gated: bool = False

    @property
    def route(self) -> str:
        return self.ranked[0][0]

    @property
    def probability(self) -> float:
        return self.ranked[0][1]

    @property
    def margin(self) -> float:
        return self.ranked[0][1] - self.ranked[1][1]


class CalibratedClassifier:
    """A :class:`LinearHead` over a :class:`Featurizer`, with the translation gate and the abstention rule."""

    __slots__ = ("abstain_below", "featurizer", "head", "min_margin", "translation_needs_ask")

    def __init__(self, featurizer: Featurizer, head: LinearHead, *, abstain_below: float = 0.4,
                 min_margin: float = 0.0, translation_needs_ask: bool = True) -> None:
        if featurizer.dim != head.weights.shape[0]:
            raise ValueError(f"the head expects {head.weights.shape[0]} features, the featurizer gives {featurizer.dim}")
        self.featurizer = featurizer
        self.head = head
        self.abstain_below = abstain_below
        self.min_margin = min_margin
        self.translation_needs_ask = translation_needs_ask

    @property
    def routes(self) -> tuple[str, ...]:
        return self.head.classes

    def predict(self, text: str) -> Prediction:
        p = self.head.probabilities(self.featurizer.features(text)).astype(np.float64)
        gated = False
        if self.translation_needs_ask and TRANSLATION in self.head.classes and not asks_translation(text):
            t = self.head.classes.index(TRANSLATION)
            gated = bool(p[t] >= p.max())
            p[t] = 0.0
            p /= p.sum()
        order = np.argsort(-p, kind="stable")
        return Prediction(tuple((self.head.classes[i], float(p[i])) for i in order), gated)

    def decide(self, prediction: Prediction, routes: Collection[str]) -> tuple[str | None, str]:
        """The route (None: abstain) and why, e.g. ``classifier p=0.91 (next math 0.04)``."""
        best, p = prediction.ranked[0]
        runner, q = prediction.ranked[1]
        gate = "; translation without an ask to translate" if prediction.gated else ""
        if p < self.abstain_below:
            return None, f"unsure: {best} {p:.2f} < abstain_below {self.abstain_below:.2f}{gate}"
        if p - q < self.min_margin:
            return None, f"unsure: {best} {p:.2f} - {runner} {q:.2f} < min_margin {self.min_margin:.2f}{gate}"
        if best not in routes:
            return None, f"classifier chose {best} {p:.2f}, not a route here"
        return best, f"classifier p={p:.2f} (next {runner} {q:.2f}){gate}"
