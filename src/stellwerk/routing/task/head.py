"""A calibrated linear head: multinomial logistic regression over :mod:`.features`, stored as ``.npz``.

    p(route | prompt) = softmax((x @ W + b) / T)

``W`` and ``b`` are fitted by :func:`fit_head` (full-batch Adam on the mean cross-entropy plus
``l2 * |W|²``, from zeros: deterministic). ``T`` (temperature) is then fitted on *out-of-fold* logits
(``folds``-fold cross-validation over the examples) to minimize their negative log-likelihood, so that a
probability of 0.9 means about 9 in 10 right on prompts the head did not train on.

The file holds ``classes``, ``weights``, ``bias``, ``temperature`` and the feature spec as JSON, no
pickles (loaded with ``allow_pickle=False``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from .features import FeatureSpec

__all__ = ["LinearHead", "fit_head", "fit_temperature", "train_weights"]

Matrix = npt.NDArray[np.float32]


class LinearHead:
    """The fitted head; :meth:`probabilities` is one matrix-vector product and a softmax."""

    __slots__ = ("bias", "classes", "spec", "temperature", "weights")

    def __init__(self, classes: Sequence[str], weights: Matrix, bias: Matrix, temperature: float, spec: FeatureSpec) -> None:
        if weights.ndim != 2 or weights.shape[1] != len(classes) or bias.shape != (len(classes),):
            raise ValueError(f"head shapes do not match {len(classes)} classes: weights {weights.shape}, bias {bias.shape}")
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError("a head needs at least two distinct classes")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.classes = tuple(classes)
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.temperature = float(temperature)
        self.spec = spec

    def logits(self, features: Matrix) -> Matrix:
        result: Matrix = features @ self.weights + self.bias
        return result

    def probabilities(self, features: Matrix) -> Matrix:
        """One probability per class (rows of ``features`` give rows of probabilities)."""
        return _softmax(self.logits(features) / np.float32(self.temperature))

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as f:
            np.savez_compressed(
                f, classes=np.array(self.classes), weights=self.weights.astype(np.float16), bias=self.bias,
                temperature=np.float32(self.temperature), spec=np.array(msgspec.json.encode(self.spec).decode()))

    @classmethod
    def load(cls, path: str | Path) -> LinearHead:
        """Raises ``ValueError`` naming the file when it is not a head written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                spec = msgspec.json.decode(str(data["spec"]), type=FeatureSpec)
                return cls([str(c) for c in data["classes"]], data["weights"].astype(np.float32), data["bias"],
                           float(data["temperature"]), spec)
        except (OSError, EOFError, KeyError, ValueError, msgspec.ValidationError, msgspec.DecodeError) as err:
            raise ValueError(f"{path}: not a task-router head ({err})") from err


def train_weights(x: Matrix, y: npt.NDArray[np.int64], n_classes: int, *, l2: float = 1e-4,
                  steps: int = 300, rate: float = 0.05) -> tuple[Matrix, Matrix]:
    """``W`` and ``b`` minimizing mean cross-entropy + ``l2 * |W|²`` (full-batch Adam, from zeros)."""
    n, d = x.shape
    w = np.zeros((d, n_classes), dtype=np.float32)
    b = np.zeros(n_classes, dtype=np.float32)
    onehot = np.eye(n_classes, dtype=np.float32)[y]
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        p = _softmax(x @ w + b)
        g = (p - onehot) / np.float32(n)
        g_w = x.T @ g + np.float32(2 * l2) * w
        g_b = g.sum(axis=0)
        m_w = beta1 * m_w + (1 - beta1) * g_w
        v_w = beta2 * v_w + (1 - beta2) * g_w * g_w
        m_b = beta1 * m_b + (1 - beta1) * g_b
        v_b = beta2 * v_b + (1 - beta2) * g_b * g_b
        scale = rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
        w -= (scale * m_w / (np.sqrt(v_w) + eps)).astype(np.float32)
        b -= (scale * m_b / (np.sqrt(v_b) + eps)).astype(np.float32)
    return w, b


def fit_temperature(logits: Matrix, y: npt.NDArray[np.int64]) -> float:
    """The temperature in [0.25, 8] (log grid, 1% steps) with the lowest negative log-likelihood."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 350))
    rows = np.arange(len(y))
    nll = [-np.log(_softmax(logits / np.float32(t))[rows, y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def fit_head(x: Matrix, labels: Sequence[str], spec: FeatureSpec, *, folds: int = 5, l2: float = 1e-4,
             steps: int = 300, groups: Sequence[str | None] | None = None) -> tuple[LinearHead, Matrix]:
    """A head fitted on all rows, its temperature from ``folds``-fold out-of-fold logits.

    Also returns the out-of-fold probabilities at that temperature (rows in input order), for reporting.
    Folds are assigned round-robin within each class (deterministic, stratified); rows with the same
    ``groups`` entry (e.g. prompts made from one template) share a fold, so that near-duplicates do not
    make the out-of-fold logits, and with them the temperature, overconfident.
    """
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError("examples need at least two different labels")
    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    keys = [f"{label}\0{group}" if group is not None else f"{label}\0#{i}"
            for i, (label, group) in enumerate(zip(labels, groups or [None] * len(labels), strict=True))]
    fold = np.zeros(len(y), dtype=np.int64)
    for c in classes:
        units = sorted({k for k in keys if k.startswith(c + "\0")}, key=lambda k: (zlib.crc32(k.encode()), k))
        unit_fold = {k: i % folds for i, k in enumerate(units)}
        for i, key in enumerate(keys):
            if key in unit_fold:
                fold[i] = unit_fold[key]
    oof = np.zeros((len(y), len(classes)), dtype=np.float32)
    for k in range(folds):
        train = fold != k
        w, b = train_weights(x[train], y[train], len(classes), l2=l2, steps=steps)
        oof[~train] = x[~train] @ w + b
    temperature = fit_temperature(oof, y)
    w, b = train_weights(x, y, len(classes), l2=l2, steps=steps)
    return LinearHead(classes, w, b, temperature, spec), _softmax(oof / np.float32(temperature))


def _softmax(z: Matrix) -> Matrix:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    result: Matrix = e / e.sum(axis=-1, keepdims=True)
    return result
