"""Canonical (OpenAI) requests → Gemini ``generateContent`` and ``embedContent`` bodies.

=========================  ==================================================================
OpenAI                     Gemini
=========================  ==================================================================
system / developer         ``systemInstruction.parts[].text`` (all of them, in order)
user                       ``contents[]`` role ``user``: ``text`` and ``inlineData`` parts
assistant                  role ``model``: ``text`` and ``functionCall {name, args}`` parts
tool (tool_call_id)        role ``user``: ``functionResponse {name, response}`` (name from the call)
tools                      ``tools[].functionDeclarations[]`` (schemas reduced, see ``schema``)
tool_choice                ``toolConfig.functionCallingConfig``: AUTO / NONE / ANY (+ allowed names)
temperature, top_p, seed   ``generationConfig``: temperature, topP, seed
max_(completion_)tokens    ``generationConfig.maxOutputTokens``
stop, n                    ``generationConfig.stopSequences``, ``candidateCount``
presence/frequency pen.    ``generationConfig.presencePenalty`` / ``frequencyPenalty``
response_format json       ``responseMimeType: application/json`` (+ ``responseSchema``)
reasoning_effort           ``generationConfig.thinkingConfig.thinkingBudget``: none 0, minimal 128,
                           low 1024, medium 8192, high and xhigh 24576 tokens
=========================  ==================================================================

Consecutive messages of one role become one ``Content`` (Gemini wants the
answers to parallel calls together). Gemini 3 returns a ``thoughtSignature``
with each function call that must come back with it: the adapter appends it to
the tool call's id (``<id>__ts__<signature>``), and here it is split off again.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from stellwerk.providers.canonical import (
    append_turn,
    arguments_object,
    content_parts,
    json_mode,
    reject_custom_tools,
    reject_logprobs,
    result_object,
    sampling,
    text_of,
    tool_choice,
    tool_names,
    unsupported,
)
from stellwerk.tokens import embedding_texts

from .schema import to_gemini_schema

__all__ = ["SIGNATURE_MARK", "chat_body", "embeddings_body", "join_signature", "split_signature"]

PROVIDER = "gemini"
SIGNATURE_MARK = "__ts__"
"""Separates a tool call id from the Gemini thought signature carried in it (ids stay ``[A-Za-z0-9_-]``)."""

_CONFIG = {"temperature": "temperature", "top_p": "topP", "seed": "seed", "n": "candidateCount",
           "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty",
           "max_tokens": "maxOutputTokens", "stop": "stopSequences"}


def join_signature(call_id: str, signature: str | None) -> str:
    """A tool call id carrying Gemini's thought signature (re-encoded URL-safe, so the id stays portable)."""
    if not signature:
        return call_id
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return call_id
    return f"{call_id}{SIGNATURE_MARK}{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


def split_signature(call_id: str) -> tuple[str, str | None]:
    """``(id, thought signature or None)``, inverting :func:`join_signature`."""
    base, mark, encoded = call_id.partition(SIGNATURE_MARK)
    if not mark or not encoded:
        return call_id, None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return base, None
    return base, base64.b64encode(raw).decode()


def _user_parts(content: Any) -> list[dict[str, Any]]:
    return [{"text": p} if isinstance(p, str) else {"inlineData": {"mimeType": p[0], "data": p[1]}}
            for p in content_parts(content, PROVIDER)]


def _model_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": t} for t in content_parts(message.get("content"), PROVIDER)
                                   if isinstance(t, str)]
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        part: dict[str, Any] = {"functionCall": {"name": function.get("name"),
                                                 "args": arguments_object(function.get("arguments"))}}
        _, signature = split_signature(str(call.get("id") or ""))
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(name: str, content: Any) -> dict[str, Any]:
    """Gemini wants an object: a JSON object result as is, anything else as ``{"output": text}``."""
    return {"functionResponse": {"name": name, "response": result_object(content) or {"output": text_of(content)}}}


def _contents(messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    names = tool_names(messages)
    system: list[str] = []
    contents: list[dict[str, Any]] = []

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        append_turn(contents, role, parts, "parts")

    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append(text)
        elif role == "user":
            add("user", _user_parts(message.get("content")))
        elif role == "assistant":
            add("model", _model_parts(message))
        elif role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            add("user", [_function_response(names.get(call_id, call_id), message.get("content"))])
        elif role == "function":
            add("user", [_function_response(str(message.get("name") or ""), message.get("content"))])
    return system, contents


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    if not tools:
        return {}
    declarations = []
    for tool in tools:
        function = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and parameters.get("properties"):
            declaration["parameters"] = to_gemini_schema(parameters)
        declarations.append(declaration)
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    mode, forced = tool_choice(body)
    if mode != "auto":
        config: dict[str, Any] = {"mode": "NONE" if mode == "none" else "ANY"}
        if forced:
            config["allowedFunctionNames"] = [forced]
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


_THINKING = {"none": 0, "minimal": 128, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
"""Thinking budgets (tokens) for OpenAI's reasoning efforts."""


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = sampling(body, _CONFIG)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _THINKING:
            raise unsupported(PROVIDER, f"reasoning_effort {effort!r}", "reasoning_effort")
        config["thinkingConfig"] = {"thinkingBudget": _THINKING[effort]}
    wants_json, schema = json_mode(body)
    if wants_json:
        config["responseMimeType"] = "application/json"
        if schema is not None:
            config["responseSchema"] = to_gemini_schema(schema)
    return config


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """The ``generateContent`` (and ``streamGenerateContent``) request body."""
    reject_logprobs(body, PROVIDER)
    reject_custom_tools(body, PROVIDER)
    system, contents = _contents(body.get("messages") or [])
    wire: dict[str, Any] = {"contents": contents}
    if system:
        wire["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    wire.update(_tools(body))
    config = _generation_config(body)
    if config:
        wire["generationConfig"] = config
    return wire


def embeddings_body(body: dict[str, Any], model_path: str) -> tuple[bool, dict[str, Any]]:
    """``(batched, body)``: one string → ``embedContent``; a list → ``batchEmbedContents``."""
    data = body.get("input")
    dims = body.get("dimensions")
    extra = {"outputDimensionality": dims} if isinstance(dims, int) else {}
    if isinstance(data, str):
        return False, {"content": {"parts": [{"text": data}]}, **extra}
    texts = embedding_texts(data)
    if texts is None:
        raise unsupported(PROVIDER, "this embeddings input", "input")
    return True, {"requests": [{"model": model_path, "content": {"parts": [{"text": x}]}, **extra} for x in texts]}
