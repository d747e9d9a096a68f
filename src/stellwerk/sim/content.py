"""Deterministic content, independent of any wire format: reply words, JSON values, embeddings.

Everything here is a pure function of its inputs (and the profile's seed), so
tests can predict what the sim answers:

* :func:`reply_words` -- ``n`` words drawn from :data:`WORDS` by ``random.Random(seed)``;
  a shorter reply is a prefix of a longer one with the same seed;
* :func:`schema_example` -- a JSON value satisfying a JSON schema (:mod:`stellwerk.sim.example`);
* :func:`embedding` -- a unit-length float32 vector derived from a BLAKE2b hash of the input.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from typing import Final

from stellwerk.sim.example import schema_example

__all__ = ["LENGTHS_KEPT", "WORDS", "ReplyCache", "embedding", "estimate_tokens", "reply_pieces", "reply_words", "schema_example"]

WORDS: Final = (
    "the", "signal", "box", "routes", "each", "train", "to", "a", "free", "track", "while", "points",
    "switch", "and", "lamps", "glow", "green", "when", "line", "is", "clear", "for", "next", "block",
    "operator", "checks", "timetable", "sends", "message", "along", "wire", "station", "yard", "siding",
    "junction", "platform", "arrives", "departs", "on", "time", "with", "care", "every", "request",
    "finds", "its", "way", "home", "quiet", "steady", "fast", "safe", "north", "south", "east", "west",
    "morning", "evening", "bridge", "tunnel", "valley", "river", "freight", "passenger",
)  # fmt: skip


LENGTHS_KEPT = 4096
"""Replies of up to this many different lengths are kept by each cache of them (the policy simulator draws answer
lengths from a long-tailed distribution: a few thousand different ones in 100,000 requests)."""


def estimate_tokens(chars: int) -> int:
    """A cheap token estimate: one token per four characters, at least one."""
    return max(1, (chars + 3) // 4)


def reply_words(n: int, seed: int) -> tuple[str, ...]:
    """``n`` deterministic words; ``reply_words(k, s)`` is a prefix of ``reply_words(n, s)`` for k <= n."""
    rng = random.Random(seed)
    words = WORDS
    count = len(words)
    return tuple(words[int(rng.random() * count)] for _ in range(n))


def reply_pieces(words: tuple[str, ...], per_piece: int) -> tuple[str, ...]:
    """``words`` in groups of ``per_piece``, each after the first with a leading space (as streamed)."""
    return tuple((" " if i else "") + " ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece))


class ReplyCache:
    """Caches replies per length for one seed (the hot path asks for the same few lengths)."""

    __slots__ = ("_cache", "_longest", "_pieces", "seed")

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._cache: dict[int, tuple[str, ...]] = {}
        self._pieces: dict[tuple[int, int], tuple[str, ...]] = {}
        self._longest: tuple[str, ...] = ()
        """The longest reply made so far: shorter ones are its prefixes (see :func:`reply_words`)."""

    def pieces(self, n: int, per_piece: int) -> tuple[str, ...]:
        """:func:`reply_pieces` of the ``n``-word reply."""
        key = (n, per_piece)
        pieces = self._pieces.get(key)
        if pieces is None:
            if len(self._pieces) > LENGTHS_KEPT:
                self._pieces.clear()
            pieces = self._pieces[key] = reply_pieces(self.words(n), per_piece)
        return pieces

    def words(self, n: int) -> tuple[str, ...]:
        words = self._cache.get(n)
        if words is None:
            if len(self._cache) > LENGTHS_KEPT:
                self._cache.clear()
            if n > len(self._longest):
                self._longest = reply_words(n, self.seed)
            words = self._cache[n] = self._longest[:n]
        return words


def embedding(text: str | bytes, dimensions: int) -> list[float]:
    """A deterministic unit vector of float32 values for ``text``."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    rng = random.Random(hashlib.blake2b(data, digest_size=16).digest())
    raw = [rng.random() - 0.5 for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    # Round through float32 so the float list and the base64 encoding carry identical values.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in raw))))
