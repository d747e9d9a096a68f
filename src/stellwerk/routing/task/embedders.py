"""Text embedders for the semantic classifier: texts in, unit-length vectors out, fully offline.

An :class:`Embedder` is anything with ``name``, ``dim`` and ``embed(texts)``; the
classifier needs nothing else, so tests inject a fake one and users can plug in
their own. The built-in one is a *static* embedder: each token has a fixed vector
and a text's vector is the (optionally weighted) mean of its tokens' vectors,
scaled to length 1 — a table lookup and a sum, tens of microseconds per prompt.

Loaders (none of them touches the network; every file comes from disk):

- ``wordllama``: the 256-dimensional ``l2_supercat`` model that the ``wordllama``
  package ships inside its wheel (32k-token Llama-2 vocabulary, 19 MB). Its files are
  read directly: importing ``wordllama`` itself would install a root logging handler
  (``logging.basicConfig`` at import), and its default loader looks for the
  tokenizer in a folder that does not exist and then tries to download it.
- ``model2vec:PATH``: a Model2Vec model directory on disk (``model.safetensors`` with
  an ``embeddings`` tensor, optional ``weights``/``mapping`` for vocabulary
  quantization, ``tokenizer.json``, optional ``config.json``).
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

__all__ = ["Embedder", "StaticEmbedder", "load_embedder", "load_model2vec", "load_wordllama", "wordllama_dir"]

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Turns texts into an ``(len(texts), dim)`` float32 array of L2-normalized rows.

    A text with no known token embeds to the zero vector (cosine 0 with everything).
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class StaticEmbedder:
    """Mean of per-token vectors (times optional per-token weights), normalized.

    ``table`` has one row per table entry; ``mapping`` (optional) maps token ids to
    rows (vocabulary quantization); ``weights`` (optional) scales each token id's
    row. Token ids in ``skip`` (e.g. the unknown token) are ignored.
    """

    __slots__ = ("_mapping", "_skip", "_table", "_tokenizer", "_weights", "dim", "name")

    def __init__(
        self,
        name: str,
        tokenizer: Tokenizer,
        table: npt.NDArray[np.floating],
        *,
        weights: npt.NDArray[np.floating] | None = None,
        mapping: npt.NDArray[np.integer] | None = None,
        skip: Sequence[int] = (),
    ) -> None:
        if table.ndim != 2:
            raise ValueError(f"embedding table must be 2-dimensional, got shape {table.shape}")
        self.name = name
        self.dim = int(table.shape[1])
        self._tokenizer = tokenizer
        self._table = np.ascontiguousarray(table, dtype=np.float32)
        self._weights = None if weights is None else np.ascontiguousarray(weights, dtype=np.float32)
        self._mapping = None if mapping is None else np.ascontiguousarray(mapping, dtype=np.int64)
        self._skip = np.asarray(sorted(set(skip)), dtype=np.int64)
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._embed_one(text)
        return out

    def _embed_one(self, text: str) -> Vectors:
        ids = np.asarray(self._tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        if self._skip.size:
            ids = ids[~np.isin(ids, self._skip)]
        vocab = self._table.shape[0] if self._mapping is None else self._mapping.shape[0]
        ids = ids[ids < vocab]
        if ids.size == 0:
            return np.zeros(self.dim, dtype=np.float32)
        rows = self._table.take(ids if self._mapping is None else self._mapping.take(ids), axis=0)
        vector = np.add.reduce(rows, axis=0) if self._weights is None else self._weights.take(ids) @ rows
        norm = math.sqrt(float(vector @ vector))
        if norm == 0.0:
            return np.zeros(self.dim, dtype=np.float32)
        result: Vectors = vector / np.float32(norm)
        return result


def wordllama_dir() -> Path:
    """The installed ``wordllama`` package's folder, found without importing it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the wordllama package is not installed (pip install wordllama)")
    return Path(next(iter(spec.submodule_search_locations)))


def load_wordllama(dim: int = 256, *, package_dir: Path | None = None) -> StaticEmbedder:
    """WordLlama ``l2_supercat`` from the files shipped in the wordllama wheel.

    ``dim`` truncates the vectors (WordLlama is trained Matryoshka-style, so the
    first 64/128/256 dimensions are each usable on their own).
    """
    if dim not in (64, 128, 256):
        raise ValueError(f"wordllama dim must be 64, 128 or 256, got {dim}")
    root = package_dir or wordllama_dir()
    weights_path = root / "weights" / "l2_supercat_256.safetensors"
    tokenizer_path = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    for path in (weights_path, tokenizer_path):
        if not path.is_file():
            raise FileNotFoundError(f"wordllama model file missing: {path}")
    table = load_file(str(weights_path))["embedding.weight"][:, :dim]
    return StaticEmbedder(f"wordllama-l2_supercat-{dim}", Tokenizer.from_file(str(tokenizer_path)), table)


def load_model2vec(path: str | Path) -> StaticEmbedder:
    """A Model2Vec model directory (``model.safetensors`` + ``tokenizer.json``)."""
    root = Path(path).expanduser()
    tensors = load_file(str(root / "model.safetensors"))
    if "embeddings" not in tensors:
        raise ValueError(f"{root / 'model.safetensors'}: no 'embeddings' tensor (not a Model2Vec model?)")
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    unk = _unknown_token_id(root / "tokenizer.json")
    return StaticEmbedder(
        f"model2vec:{root.name}",
        tokenizer,
        tensors["embeddings"],
        weights=tensors.get("weights"),
        mapping=tensors.get("mapping"),
        skip=() if unk is None else (unk,),
    )


def _unknown_token_id(tokenizer_json: Path) -> int | None:
    model = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {})
    unk_id = model.get("unk_id")
    if isinstance(unk_id, int):
        return unk_id
    unk_token = model.get("unk_token")
    vocab = model.get("vocab")
    if isinstance(unk_token, str) and isinstance(vocab, dict):
        found = vocab.get(unk_token)
        return found if isinstance(found, int) else None
    return None


def load_embedder(spec: str) -> Embedder:
    """Build an embedder from its config name: ``wordllama``, ``wordllama:128`` or ``model2vec:PATH``.

    Loading reads tens of megabytes: do it once per spec at start-up and share the result.
    """
    kind, _, arg = spec.partition(":")
    if kind == "wordllama":
        return load_wordllama(int(arg) if arg else 256)
    if kind == "model2vec" and arg:
        return load_model2vec(arg)
    raise ValueError(f"unknown embedder {spec!r}: expected 'wordllama', 'wordllama:DIM' or 'model2vec:PATH'")
