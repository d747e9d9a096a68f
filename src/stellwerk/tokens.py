"""Counting prompt tokens before sending, to skip deployments whose context window is too small.

Uses ``quicktok`` (exact BPE, ships cl100k/o200k offline; ids identical to
tiktoken's). Counts follow OpenAI's chat accounting: each message costs its
content's tokens plus 3, and every reply is primed with 3 more. For other
providers' tokenizers this is an estimate, usually within a few percent.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["count_prompt_tokens", "count_text_tokens", "embedding_texts", "warm"]

_PER_MESSAGE = 3
_PER_REPLY = 3
_PER_IMAGE = 765  # OpenAI's cost of a high-detail 512px tile set; a conservative estimate


@lru_cache(maxsize=1)
def _encoding() -> Any:
    try:
        import quicktok
    except ImportError:  # pragma: no cover - a dependency; fall back to an estimate
        return None
    return quicktok.get_encoding("o200k_base")


def warm() -> None:
    """Load the tokenizer now (it takes ~0.6 s of CPU): a gateway that counts prompt tokens does it at start."""
    _encoding()


def count_text_tokens(text: str) -> int:
    enc = _encoding()
    if enc is None:  # pragma: no cover
        return (len(text) + 3) // 4
    return len(enc.encode(text))


def count_prompt_tokens(body: dict[str, Any]) -> int:
    """Tokens of the prompt of an OpenAI-format chat request (messages, tool definitions)."""
    texts: list[str] = []
    total = _PER_REPLY
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        total += _PER_MESSAGE
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "image_url":
                    total += _PER_IMAGE
        for call in message.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                texts.append(str(fn.get("name", "")))
                texts.append(str(fn.get("arguments", "")))
    tools = body.get("tools")
    if tools:
        import orjson

        texts.append(orjson.dumps(tools).decode())
    enc = _encoding()
    if enc is None:  # pragma: no cover
        return total + sum((len(t) + 3) // 4 for t in texts)
    return total + sum(len(enc.encode(t)) for t in texts if t)


@lru_cache(maxsize=1)
def _embedding_encoding() -> Any:
    import quicktok

    return quicktok.get_encoding("cl100k_base")  # the tokenizer of OpenAI's embedding models


def embedding_texts(data: object) -> list[str] | None:
    """An embeddings ``input`` as texts: strings as they are, token-id arrays decoded with cl100k (the ids the
    OpenAI SDKs send, e.g. LangChain's default). None when it is neither (or an id is out of range)."""
    if isinstance(data, str):
        return [data]
    if not isinstance(data, list) or not data:
        return None
    if all(isinstance(x, str) for x in data):
        return list(data)
    arrays = [data] if all(isinstance(x, int) for x in data) else data
    if not all(isinstance(a, list) and a and all(isinstance(t, int) and not isinstance(t, bool) for t in a)
               for a in arrays):
        return None
    encoding = _embedding_encoding()
    if any(t < 0 or t >= encoding.n_vocab for a in arrays for t in a):
        return None
    return [encoding.decode(a) for a in arrays]
