"""Canonical (OpenAI) requests → Bedrock ``Converse`` / ``ConverseStream`` bodies.

========================  ====================================================================
OpenAI                    Converse
========================  ====================================================================
system / developer        ``system: [{"text"}]``
user                      ``messages[]`` role ``user``: ``text`` and ``image`` blocks
                          (``{"format": "png", "source": {"bytes": base64}}``)
assistant + tool_calls    role ``assistant``: ``text`` and ``toolUse {toolUseId, name, input}``
tool (tool_call_id)       role ``user``: ``toolResult {toolUseId, content: [{"json"} | {"text"}]}``
tools                     ``toolConfig.tools[].toolSpec {name, description, inputSchema.json}``
tool_choice               ``toolConfig.toolChoice``: default (auto) / ``any`` / ``tool {name}``; ``none``
                          leaves the tools out (kept, without a choice, when the history has calls;
                          called tools are declared when the request names none)
max_(completion_)tokens,  ``inferenceConfig``: maxTokens, temperature, topP, stopSequences
temperature, top_p, stop
========================  ====================================================================

Converse wants strictly alternating roles starting with ``user`` and no blank
text blocks, so consecutive messages of one role are merged and empty texts
dropped. ``seed``, penalties and ``response_format`` have no Converse field and
are not sent; ``n > 1`` is not supported (``MOVE_ON``).
"""

from __future__ import annotations

from typing import Any

from stellwerk.providers.canonical import (
    append_turn,
    arguments_object,
    content_parts,
    reject_custom_tools,
    reject_logprobs,
    reject_n,
    result_object,
    sampling,
    text_of,
    tool_choice,
    unsupported,
)

__all__ = ["converse_body"]

PROVIDER = "bedrock"
_INFERENCE = {"max_tokens": "maxTokens", "temperature": "temperature", "top_p": "topP", "stop": "stopSequences"}
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def _blocks(content: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in content_parts(content, PROVIDER):
        if isinstance(part, str):
            blocks.append({"text": part})
        elif part[0] in _FORMATS:
            blocks.append({"image": {"format": _FORMATS[part[0]], "source": {"bytes": part[1]}}})
        else:
            raise unsupported(PROVIDER, f"images of type {part[0]}")
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    value = result_object(message.get("content"))
    content = [{"json": value}] if value is not None else [{"text": text_of(message.get("content")) or " "}]
    return {"toolResult": {"toolUseId": str(message.get("tool_call_id") or ""), "content": content}}


def _messages(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """``(system blocks, messages, the names of the tools the history called)``."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    called: list[str] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        append_turn(out, role, blocks, "content")

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append({"text": text})
        elif role == "user":
            add("user", _blocks(message.get("content")))
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                blocks.append({"toolUse": {"toolUseId": str(call.get("id") or ""), "name": function.get("name"),
                                           "input": arguments_object(function.get("arguments"))}})
                called.append(str(function.get("name")))
            add("assistant", blocks)
        elif role == "tool":
            add("user", [_tool_result(message)])
        elif role == "function":
            raise unsupported(PROVIDER, "legacy 'function' messages (use tools)")
    return system, out, called


def _tool_config(body: dict[str, Any], called: list[str]) -> dict[str, Any] | None:
    """Converse rejects toolUse / toolResult blocks without a ``toolConfig``: when the history holds calls
    but the request names no tools, the called tools are declared (with an open schema)."""
    tools = body.get("tools") or [{"function": {"name": name}} for name in dict.fromkeys(called)]
    mode, forced = tool_choice(body)
    if not tools or (mode == "none" and not called):
        return None
    specs = []
    for tool in tools:
        function = tool.get("function") or {}
        spec: dict[str, Any] = {"name": function.get("name"),
                                "inputSchema": {"json": function.get("parameters") or {"type": "object"}}}
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if not body.get("tools"):
        return config
    if forced:
        config["toolChoice"] = {"tool": {"name": forced}}
    elif mode == "required":
        config["toolChoice"] = {"any": {}}
    return config  # auto is Converse's default (and the only choice some models accept)


def converse_body(body: dict[str, Any]) -> dict[str, Any]:
    reject_n(body, PROVIDER)
    reject_logprobs(body, PROVIDER)
    if body.get("reasoning_effort") is not None:  # Converse has no model-independent reasoning setting
        raise unsupported(PROVIDER, "reasoning_effort", "reasoning_effort")
    reject_custom_tools(body, PROVIDER)
    system, messages, called = _messages(body.get("messages") or [])
    wire: dict[str, Any] = {"messages": messages}
    if system:
        wire["system"] = system
    inference = sampling(body, _INFERENCE)
    if inference:
        wire["inferenceConfig"] = inference
    tool_config = _tool_config(body, called)
    if tool_config is not None:
        wire["toolConfig"] = tool_config
    return wire
