"""Unit vectors of one scope as one matrix (the semantic cache's index); imported with numpy on first use."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Index", "Vector", "unit_vector"]

Vector = npt.NDArray[np.float32]


def unit_vector(vector: Sequence[float]) -> Vector | None:
    """``vector`` scaled to length 1 as float32; None for a zero or non-finite one."""
    array = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.sqrt(array @ array))
    if norm == 0 or not math.isfinite(norm):
        return None
    unit: Vector = array / np.float32(norm)
    return unit


class Index:
    """The vectors of one scope (and dimension) as one matrix, so a lookup is one matrix-vector product.

    Rows are unit length; removing a row moves the last one into its place. Grows by doubling.
    """

    __slots__ = ("expires", "keys", "matrix", "rows")

    def __init__(self, dim: int) -> None:
        self.matrix = np.zeros((8, dim), dtype=np.float32)
        self.expires = np.zeros(8, dtype=np.float64)
        self.keys: list[str] = []
        self.rows: dict[str, int] = {}

    def add(self, key: str, vector: Vector, expires: float) -> None:
        n = len(self.keys)
        if n == len(self.matrix):
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
            self.expires = np.concatenate([self.expires, np.zeros_like(self.expires)])
        self.matrix[n] = vector
        self.expires[n] = expires
        self.keys.append(key)
        self.rows[key] = n

    def remove(self, key: str) -> None:
        row = self.rows.pop(key)
        last = len(self.keys) - 1
        if row != last:
            moved = self.keys[last]
            self.matrix[row] = self.matrix[last]
            self.expires[row] = self.expires[last]
            self.keys[row] = moved
            self.rows[moved] = row
        self.keys.pop()

    def best(self, query: Vector, now: float) -> tuple[float, str, list[str]]:
        """The best unexpired row's score and key, and the keys of expired rows.

        The product is an ``einsum``, not BLAS: it stays on this thread. (A multi-threaded BLAS product
        waits for a second core; on a busy machine that made a lookup ten times slower.)
        """
        n = len(self.keys)
        scores = np.einsum("ij,j->i", self.matrix[:n], query)
        expired = self.expires[:n] <= now
        stale: list[str] = []
        if expired.any():
            stale = [self.keys[i] for i in np.flatnonzero(expired)]
            scores[expired] = -np.inf
        i = int(np.argmax(scores))
        return float(scores[i]), self.keys[i], stale

