"""The calibrated head's input: one fixed-length feature vector per prompt.

    [ embed(prompt) | embed(first N words) | embed(last N words) | hashed words | hashed char n-grams
      | ask lines: hashed words | hashed char n-grams | ask cues ]

- Three static embeddings (see :mod:`.embedders`): the whole prompt (cut to ``max_chars``), and its first
  and last ``focus_words`` words, where the instruction usually is (a short prompt is its own window).
- A hashed bag of lower-cased words and word pairs, and a hashed bag of character 1-3-grams. They carry
  what the embedder misses: the ask words of every language ("übersetze", "résume", "要約", "翻译"),
  including languages written without spaces. They are taken from the first and last ``window_chars``
  characters only, so pasted material in the middle weighs little and the cost per prompt is bounded.
  Each bag is ``log(1 + count)``, scaled to length 1 (the character bag to ``char_scale``).
- The *ask lines* (the first and the last non-empty line, see :func:`.cues.ask_lines`) get bags of their own,
  so that the instruction is not drowned by pasted material that starts or ends in the window; and one 0/1
  per hand-written ask cue (:mod:`.cues`: "summarize", "classify", "extract" ... in eight languages).
  ``ask_buckets = 0`` or ``cue_scale = 0`` leave those blocks out.

Hashing is deterministic across processes (CRC-32 for words, a fixed multiplicative hash of code points
for n-grams), so a head trained in one process scores the same in another.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from .cues import CUES, ask_lines, cue_vector
from .embedders import Embedder

__all__ = ["FeatureSpec", "Featurizer"]

_WORD = re.compile(r"\w+")
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_PRIME = np.uint64(1_000_003)


class FeatureSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How prompts become features; stored with a head so that scoring matches training."""

    embedder: str = "wordllama"
    """The embedder's config name (see :func:`~.embedders.load_embedder`)."""
    word_buckets: int = 2048
    char_buckets: int = 4096
    focus_words: int = 12
    window_chars: int = 300
    max_chars: int = 4000
    char_scale: float = 3.0
    """The character bag's length (the word bag's is 1): chosen by grouped cross-validation on the training set."""
    ask_buckets: int = 1024
    """Buckets of the ask lines' word bag (their character bag has twice as many); 0: no ask-line blocks."""
    ask_scale: float = 1.0
    """The length of the ask lines' word bag (their character bag's is ``char_scale`` times it)."""
    cue_scale: float = 1.0
    """The value of a present ask cue (0: no cue block)."""


class Featurizer:
    """Turns prompts into rows of ``dim`` float32 features (see the module docstring)."""

    __slots__ = ("_embedder", "dim", "spec")

    def __init__(self, embedder: Embedder, spec: FeatureSpec) -> None:
        self._embedder = embedder
        self.spec = spec
        ask = 3 * spec.ask_buckets if spec.ask_buckets else 0
        self.dim = 3 * embedder.dim + spec.word_buckets + spec.char_buckets + ask + (len(CUES) if spec.cue_scale else 0)

    def features(self, text: str) -> npt.NDArray[np.float32]:
        spec = self.spec
        if len(text) > spec.max_chars:
            half = spec.max_chars // 2
            text = f"{text[:half]}\n{text[-half:]}"
        words = text.split()
        if len(words) > 2 * spec.focus_words:
            views = [text, " ".join(words[: spec.focus_words]), " ".join(words[-spec.focus_words :])]
            dense = self._embedder.embed(views).reshape(-1)
        else:
            dense = np.tile(self._embedder.embed([text])[0], 3)
        window = text if len(text) <= 2 * spec.window_chars else f"{text[: spec.window_chars]}\n{text[-spec.window_chars :]}"
        window = window.lower()
        blocks = [dense, _word_bag(window, spec.word_buckets), spec.char_scale * _char_bag(window, spec.char_buckets)]
        if spec.ask_buckets or spec.cue_scale:
            lines = ask_lines(text).lower()
            if spec.ask_buckets:
                blocks += [spec.ask_scale * _word_bag(lines, spec.ask_buckets),
                           spec.ask_scale * spec.char_scale * _char_bag(lines, 2 * spec.ask_buckets)]
            if spec.cue_scale:
                blocks.append(spec.cue_scale * cue_vector(lines))
        return np.concatenate(blocks).astype(np.float32, copy=False)

    def matrix(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self.features(text)
        return out


def _word_bag(text: str, buckets: int) -> npt.NDArray[np.float32]:
    words = _WORD.findall(text)
    keys = [w.encode() for w in words] + [f"{a} {b}".encode() for a, b in itertools.pairwise(words)]
    ids = np.fromiter((zlib.crc32(k) % buckets for k in keys), dtype=np.int64, count=len(keys))
    return _bag(ids, buckets)


def _char_bag(text: str, buckets: int) -> npt.NDArray[np.float32]:
    codes = np.frombuffer(f" {text} ".encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    for n in (1, 2, 3):
        if codes.size < n:
            break
        h = codes[: codes.size - n + 1].copy()
        for j in range(1, n):
            h = h * _PRIME ^ codes[j : codes.size - n + 1 + j]
        h = (h + np.uint64(n)) * _GOLDEN
        parts.append((h >> np.uint64(40)) % np.uint64(buckets))
    ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return _bag(ids, buckets)


def _bag(ids: npt.NDArray[np.int64], buckets: int) -> npt.NDArray[np.float32]:
    bag = np.log1p(np.bincount(ids, minlength=buckets).astype(np.float32))
    norm = float(np.linalg.norm(bag))
    if norm > 0:
        bag /= np.float32(norm)
    return bag
