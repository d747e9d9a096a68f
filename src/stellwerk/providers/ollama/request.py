"""Canonical (OpenAI) requests → Ollama's native ``/api/chat`` and ``/api/embed`` bodies.

==========================  ===============================================================
OpenAI                      Ollama
==========================  ===============================================================
system / developer          ``{"role": "system", "content"}``
user                        ``{"role": "user", "content", "images": [base64, …]}``
assistant + tool_calls      ``{"role": "assistant", "content", "tool_calls": [{"function":
                            {"name", "arguments": {…}}}]}`` (arguments as an object)
tool (tool_call_id)         ``{"role": "tool", "content", "tool_name"}`` (name from the call)
tools                       ``tools`` (the same shape); ``tool_choice: none`` drops them
temperature, top_p, seed,   ``options``: temperature, top_p, seed, presence_penalty,
presence/frequency penalty  frequency_penalty
max_(completion_)tokens     ``options.num_predict``
stop                        ``options.stop``
response_format             ``format``: ``"json"``, or the JSON schema
reasoning_effort            ``think``: ``false`` for ``none``, else ``true`` (the level is not kept)
==========================  ===============================================================

A trailing assistant message stays last, so Ollama continues it (prefill).
Ollama cannot force a tool call (``tool_choice: required``): the tools are
offered and the model decides. ``n > 1`` is not supported (``MOVE_ON``).
"""

from __future__ import annotations

from typing import Any

from stellwerk.providers.canonical import (
    arguments_object,
    content_parts,
    json_mode,
    reject_custom_tools,
    reject_logprobs,
    reject_n,
    sampling,
    text_of,
    tool_choice,
    tool_names,
    unsupported,
)
from stellwerk.tokens import embedding_texts

__all__ = ["chat_body", "embeddings_body"]

PROVIDER = "ollama"
_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "presence_penalty": "presence_penalty",
            "frequency_penalty": "frequency_penalty", "max_tokens": "num_predict", "stop": "stop"}


def _message(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any] | None:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": text_of(content)}
    if role == "tool" or role == "function":
        name = names.get(str(message.get("tool_call_id")), "") if role == "tool" else str(message.get("name") or "")
        return {"role": "tool", "content": text_of(content), "tool_name": name}
    if role not in ("user", "assistant"):
        return None
    parts = content_parts(content, PROVIDER)
    wire: dict[str, Any] = {"role": role, "content": "\n".join(p for p in parts if isinstance(p, str))}
    images = [p[1] for p in parts if not isinstance(p, str)]
    if images:
        wire["images"] = images
    calls = message.get("tool_calls") or ()
    if calls:
        wire["tool_calls"] = [{"function": {"name": (c.get("function") or {}).get("name"),
                                            "arguments": arguments_object((c.get("function") or {}).get("arguments"))}}
                              for c in calls]
    return wire


def chat_body(body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
    reject_n(body, PROVIDER)
    reject_logprobs(body, PROVIDER)
    reject_custom_tools(body, PROVIDER)
    messages = body.get("messages") or []
    names = tool_names(messages)
    wire: dict[str, Any] = {"model": model,
                            "messages": [m for m in (_message(x, names) for x in messages) if m is not None],
                            "stream": stream}
    tools = body.get("tools")
    if tools and tool_choice(body)[0] != "none":
        wire["tools"] = [{"type": "function", "function": t.get("function")} for t in tools]
    wants_json, schema = json_mode(body)
    if wants_json:
        wire["format"] = schema if schema is not None else "json"
    effort = body.get("reasoning_effort")
    if effort is not None:
        wire["think"] = effort != "none"
    options = sampling(body, _OPTIONS)
    if options:
        wire["options"] = options
    return wire


def embeddings_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    data = body.get("input")
    texts = data if isinstance(data, str) else embedding_texts(data)
    if texts is None:
        raise unsupported(PROVIDER, "this embeddings input", "input")
    wire: dict[str, Any] = {"model": model, "input": texts}
    if isinstance(body.get("dimensions"), int):
        wire["dimensions"] = body["dimensions"]
    return wire
