"""OpenAI Chat Completions request → Anthropic Messages request.

===========================  ==========================================================
OpenAI                       Anthropic
===========================  ==========================================================
system / developer messages  ``system`` (one string, or text blocks if several), wherever
                             they stood in the conversation
user / assistant messages    ``messages``; consecutive messages of one role are merged
tool messages                ``tool_result`` blocks in a user message (first in it)
assistant ``tool_calls``     ``tool_use`` blocks (``arguments`` JSON → ``input`` object)
``image_url`` parts          image blocks: data URIs → ``base64`` source, URLs → ``url``
``file`` parts (PDF data)    ``document`` blocks
``max_completion_tokens``,   ``max_tokens`` (required there: else the deployment's
``max_tokens``               ``default_max_tokens``)
``temperature``              ``temperature``, capped at Anthropic's maximum of 1
``top_p``, ``top_k``         the same
``stop``                     ``stop_sequences``
``user``                     ``metadata.user_id``
``tools``, ``tool_choice``   ``tools`` (``input_schema``); auto/none/required→any/named→tool
``parallel_tool_calls``      ``tool_choice.disable_parallel_tool_use``
``response_format``          json_schema: Anthropic's native structured output
                             (``output_config.format``); json_object (no schema): an
                             instruction appended to ``system``
``reasoning_effort``         ``output_config.effort`` (none/minimal → low, xhigh → high)
a final assistant message    a prefill the model continues; trailing whitespace is trimmed
                             (Anthropic refuses it)
===========================  ==========================================================

Other parameters (``seed``, penalties, ``logit_bias``, ...) have no
Anthropic counterpart and are dropped. Parts Anthropic cannot take (audio, file
ids, ``n`` > 1, ``logprobs``) make this deployment move on, so another one can answer.
"""

from __future__ import annotations

from typing import Any

from stellwerk.config import DeploymentConfig
from stellwerk.providers.canonical import (
    arguments_object,
    data_uri,
    json_mode,
    max_output_tokens,
    reject_custom_tools,
    reject_logprobs,
    reject_n,
    stop_sequences,
    tool_choice,
    unsupported,
)

__all__ = ["to_messages_request"]

Block = dict[str, Any]

_PROVIDER = "the anthropic provider"
_EFFORT = {"none": "low", "minimal": "low", "xhigh": "high"}
"""OpenAI's reasoning efforts Anthropic has no name for → the nearest of low, medium, high."""
_JSON_OBJECT = "Answer with a single valid JSON object and nothing else."


def to_messages_request(body: dict[str, Any], deployment: DeploymentConfig, stream: bool) -> dict[str, Any]:
    """The Messages API body for a canonical (OpenAI-format) chat request."""
    reject_n(body, _PROVIDER)
    reject_logprobs(body, _PROVIDER)
    reject_custom_tools(body, _PROVIDER)
    system: list[Block] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or ():
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_blocks(message.get("content"), ("text",)))
        elif role == "user":
            _append(messages, "user", _blocks(message.get("content"), ("text", "image_url", "file")))
        elif role == "assistant":
            _append(messages, "assistant", _assistant(message))
        elif role == "tool":
            content = message.get("content")
            result = {"type": "tool_result", "tool_use_id": message.get("tool_call_id"),
                      "content": content if isinstance(content, str) else _blocks(content, ("text",))}
            _append(messages, "user", [result])
        else:
            raise unsupported(_PROVIDER, f"'{role}' messages")
    _trim_prefill(messages)
    for message in messages:
        blocks = message["content"]
        if len(blocks) == 1 and blocks[0].keys() == {"type", "text"}:
            message["content"] = blocks[0]["text"]
    system.extend(_format_instruction(body))

    wire: dict[str, Any] = {"model": deployment.model,
                            "max_tokens": max_output_tokens(body) or deployment.default_max_tokens,
                            "messages": messages}
    if system:
        wire["system"] = system[0]["text"] if len(system) == 1 else system
    if (temperature := body.get("temperature")) is not None:
        wire["temperature"] = min(temperature, 1.0)
    for name in ("top_p", "top_k"):
        if body.get(name) is not None:
            wire[name] = body[name]
    if stop := stop_sequences(body):
        wire["stop_sequences"] = stop
    if isinstance(body.get("user"), str):
        wire["metadata"] = {"user_id": body["user"]}
    output: dict[str, Any] = {}
    wants_json, schema = json_mode(body)
    if wants_json and schema is not None:
        output["format"] = {"type": "json_schema", "schema": schema}
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort:
        output["effort"] = _EFFORT.get(effort, effort)
    if output:
        wire["output_config"] = output
    if body.get("tools"):
        wire["tools"] = [_tool(t["function"]) for t in body["tools"]]
        wire["tool_choice"] = _tool_choice(body)
    if stream:
        wire["stream"] = True
    return wire


def _append(messages: list[dict[str, Any]], role: str, blocks: list[Block]) -> None:
    """Add blocks as a turn of ``role``, merged into the previous turn when it has the same role."""
    if messages and messages[-1]["role"] == role:
        merged = messages[-1]["content"] + blocks
        # Anthropic wants a user turn's tool results before anything else in it.
        merged.sort(key=lambda b: b.get("type") != "tool_result")
        messages[-1]["content"] = merged
    else:
        messages.append({"role": role, "content": blocks})


def _trim_prefill(messages: list[dict[str, Any]]) -> None:
    """A final assistant turn is a prefill the model continues, and Anthropic refuses one that ends in
    whitespace: trim it (dropping what becomes empty)."""
    if not messages or messages[-1]["role"] != "assistant":
        return
    blocks = messages[-1]["content"]
    while blocks and blocks[-1]["type"] == "text" and not blocks[-1]["text"].rstrip():
        blocks.pop()
    if blocks and blocks[-1]["type"] == "text":
        blocks[-1] = {"type": "text", "text": blocks[-1]["text"].rstrip()}
    if not blocks:
        messages.pop()


def _blocks(content: Any, allowed: tuple[str, ...]) -> list[Block]:
    """Content (a string or OpenAI parts) → Anthropic blocks; empty text is left out (Anthropic rejects it)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Block] = []
    for part in content:
        kind = part.get("type")
        if kind not in allowed:
            raise unsupported(_PROVIDER, f"'{kind}' content parts")
        if kind in ("text", "refusal"):
            if text := part.get(kind):
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            image = part["image_url"]
            blocks.append({"type": "image", "source": _image_source(str(image.get("url") if isinstance(image, dict)
                                                                        else image))})
        else:
            blocks.append(_document(part.get("file")))
    return blocks


def _image_source(url: str) -> Block:
    """Data URIs → a ``base64`` source; web URLs → a ``url`` source (Anthropic fetches them)."""
    if not url.startswith("data:"):
        return {"type": "url", "url": url}
    media_type, data = data_uri(url, _PROVIDER)
    return {"type": "base64", "media_type": media_type, "data": data}


def _document(file: Any) -> Block:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:application/pdf;base64,"):
        raise unsupported(_PROVIDER, "file parts other than PDF data")
    block: Block = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                   "data": data.partition(",")[2]}}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant(message: dict[str, Any]) -> list[Block]:
    if message.get("function_call") is not None:
        raise unsupported(_PROVIDER, "legacy 'function_call' messages")
    blocks = _blocks(message.get("content"), ("text", "refusal"))
    for call in message.get("tool_calls") or ():
        fn = call["function"]
        blocks.append({"type": "tool_use", "id": call.get("id"), "name": fn["name"],
                       "input": arguments_object(fn.get("arguments"))})
    return blocks


def _format_instruction(body: dict[str, Any]) -> list[Block]:
    """JSON without a schema has no native form: an instruction (a schema goes to ``output_config``)."""
    wants_json, schema = json_mode(body)
    return [{"type": "text", "text": _JSON_OBJECT}] if wants_json and schema is None else []


def _tool(fn: dict[str, Any]) -> Block:
    tool: Block = {"name": fn["name"]}
    if fn.get("description"):
        tool["description"] = fn["description"]
    tool["input_schema"] = fn.get("parameters") or {"type": "object", "properties": {}}
    return tool


def _tool_choice(body: dict[str, Any]) -> Block:
    mode, name = tool_choice(body)
    if mode == "none":
        return {"type": "none"}
    choice: Block = {"type": "tool", "name": name} if name else {"type": "any" if mode == "required" else "auto"}
    if body.get("parallel_tool_calls") is False:
        choice["disable_parallel_tool_use"] = True
    return choice
