"""The front door's direction: an Anthropic Messages request → a canonical (OpenAI-format) chat request.

The inverse of :mod:`.request`, with validation: every problem raises
:class:`~stellwerk.errors.InvalidRequestError` naming the field
(``messages[1].content[0].source.media_type``) and what was expected.

=================================  =============================================================
Anthropic                          canonical (OpenAI)
=================================  =============================================================
``system`` (string / text blocks)  a leading system message
``messages`` user / assistant      user / assistant messages (a ``system`` role stays in place)
text blocks                        text parts (a string content stays a string)
image blocks (base64 / url)        ``image_url`` parts (data URI / URL)
document blocks                    PDF data → ``file`` parts; plain-text sources → text parts
``tool_result`` blocks             ``tool`` messages before the rest of the user turn (their
                                   images follow in a user message; ``is_error`` is dropped)
``tool_use`` blocks                assistant ``tool_calls`` (``input`` → ``arguments`` JSON)
assistant text blocks              one: a string content; several: text parts
thinking blocks                    dropped
``max_tokens``                     ``max_tokens``
``stop_sequences``                 ``stop``
``metadata.user_id``               ``user``
``temperature``, ``top_p``         the same; ``top_k`` passes as an extension
``tools``, ``tool_choice``         function tools; auto/any→required/tool→named/none;
                                   ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``
``output_config.format``           ``response_format`` json_schema (structured output; the
(or the older ``output_format``)   deployment's own form: native on anthropic, gemini, openai)
``output_config.effort``           ``reasoning_effort``
=================================  =============================================================

Other top-level fields (``thinking``, ``service_tier``, ``cache_control``, ...) are
ignored. Server tools (web search, code execution, ...) are refused: a gateway
in front of other providers cannot run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from stellwerk.errors import InvalidRequestError
from stellwerk.validate import _typename as typename

from .wire import image_url

__all__ = ["to_chat_request"]

Message = dict[str, Any]

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


def to_chat_request(body: Any, *, count_only: bool = False) -> tuple[dict[str, Any], bool]:
    """Validate an Anthropic request and translate it; return ``(canonical request, stream)``.

    ``count_only`` validates a ``count_tokens`` request (no ``max_tokens``).
    """
    if not isinstance(body, dict):
        raise InvalidRequestError(f"The request body must be a JSON object, but got {typename(body)}.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("Field required: a non-empty string naming the model." if model is None else
                   f"expected a non-empty string, but got {typename(model)}.", "model")
    out: dict[str, Any] = {"model": model, "messages": _system(body.get("system"))}
    if not count_only:
        out["max_tokens"] = _number(body, "max_tokens", int, 1, None, required=True)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("Field required: a non-empty array of messages." if messages is None else
                   f"expected a non-empty array, but got {typename(messages)}.", "messages")
    for i, message in enumerate(messages):
        out["messages"].extend(_message(message, f"messages[{i}]"))
    for name in ("temperature", "top_p"):
        if (value := _number(body, name, float, 0.0, 1.0)) is not None:
            out[name] = value
    if (top_k := _number(body, "top_k", int, 0, None)) is not None:
        out["top_k"] = top_k
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _bad("expected an array of strings.", "stop_sequences")
        if stop:
            out["stop"] = stop
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _bad(f"expected an object, but got {typename(metadata)}.", "metadata")
        if isinstance(metadata.get("user_id"), str):
            out["user"] = metadata["user_id"]
    if body.get("tools") is not None:
        out["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], out)
    _output(body, out)
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad(f"expected a boolean, but got {typename(stream)}.", "stream")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out, stream is True


def _output(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Structured output (``output_config.format`` or the older ``output_format``) and ``output_config.effort``."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise _bad(f"expected an object, but got {typename(config)}.", "output_config")
    config = config or {}
    unknown = sorted(set(config) - {"format", "effort"})
    if unknown:
        raise _bad(f"unknown field '{unknown[0]}' (expected format or effort).", f"output_config.{unknown[0]}")
    fmt, where = (config.get("format"), "output_config.format") if "format" in config else (
        body.get("output_format"), "output_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise _bad('expected {"type": "json_schema", "schema": {...}}.', where)
        out["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}
    effort = config.get("effort")
    if effort is not None:
        if effort not in ("low", "medium", "high"):
            raise _bad(f"expected low, medium or high, but got {effort!r}.", "output_config.effort")
        out["reasoning_effort"] = effort


def _number(body: dict[str, Any], name: str, kind: type, low: float | None, high: float | None,
            required: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad("Field required: an integer." if kind is int else "Field required.", name)
        return None
    accepted = (int,) if kind is int else (int, float)
    if not isinstance(value, accepted) or isinstance(value, bool):
        raise _bad(f"expected {'an integer' if kind is int else 'a number'}, but got {typename(value)}.", name)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise _bad(f"must be {bounds}, but got {value}.", name)
    return value


def _system(system: Any) -> list[Message]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, list):
        raise _bad(f"expected a string or an array of text blocks, but got {typename(system)}.", "system")
    parts = [_text(block, f"system[{k}]") for k, block in enumerate(system)]
    return [{"role": "system", "content": parts}] if parts else []


def _text(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text":
        raise _bad("expected a text block {\"type\": \"text\", \"text\": ...}.", where)
    if not isinstance(block.get("text"), str):
        raise _bad("expected a string.", f"{where}.text")
    return {"type": "text", "text": block["text"]}


def _message(message: Any, where: str) -> list[Message]:
    if not isinstance(message, dict):
        raise _bad(f"expected an object, but got {typename(message)}.", where)
    role = message.get("role")
    if role not in ("user", "assistant", "system"):
        raise _bad(f"expected 'user' or 'assistant' (or 'system'), but got {role!r}.", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _bad("Field required: a string or an array of content blocks." if content is None else
                   f"expected a string or an array of content blocks, but got {typename(content)}.", f"{where}.content")
    if role == "assistant":
        return [_assistant(content, where)]
    if role == "system":
        return [{"role": "system", "content": [_text(b, f"{where}.content[{k}]") for k, b in enumerate(content)]}]
    return _user(content, where)


def _typed(content: list[Any], where: str) -> Iterator[tuple[Any, str, str | None]]:
    """Each block of a message's content, with its path and its ``type`` (``None`` if it is not an object)."""
    for k, block in enumerate(content):
        yield block, f"{where}.content[{k}]", block.get("type") if isinstance(block, dict) else None


def _user(content: list[Any], where: str) -> list[Message]:
    tools: list[Message] = []
    parts: list[dict[str, Any]] = []
    for block, bwhere, kind in _typed(content, where):
        if kind == "tool_result":
            tools.append(_tool_result(block, bwhere, parts))
        elif kind == "text":
            parts.append(_text(block, bwhere))
        elif kind == "image":
            parts.append(_image(block, bwhere))
        elif kind == "document":
            parts.append(_document(block, bwhere))
        else:
            raise _bad(f"expected a block of type text, image, document or tool_result, but got {kind!r}.",
                       f"{bwhere}.type")
    return tools + ([{"role": "user", "content": parts}] if parts else [])


def _tool_result(block: dict[str, Any], where: str, images: list[dict[str, Any]]) -> Message:
    if not isinstance(block.get("tool_use_id"), str):
        raise _bad("Field required: the id of the tool_use this answers.", f"{where}.tool_use_id")
    content = block.get("content", "")
    if not isinstance(content, str):
        if not isinstance(content, list):
            raise _bad("expected a string or an array of text and image blocks.", f"{where}.content")
        texts: list[str] = []
        for k, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") == "image":
                images.append(_image(part, f"{where}.content[{k}]"))
            else:
                texts.append(_text(part, f"{where}.content[{k}]")["text"])
        content = "\n".join(texts)
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64" and source.get("media_type") not in _IMAGE_TYPES:
        raise _bad(f"expected one of {', '.join(sorted(_IMAGE_TYPES))}.", f"{where}.source.media_type")
    url = image_url(source)
    if url is None:
        raise _bad("expected {\"type\": \"base64\", \"media_type\", \"data\"} or {\"type\": \"url\", \"url\"}.",
                   f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    data = source.get("data")
    if source.get("type") == "text" and isinstance(data, str):
        return {"type": "text", "text": data}
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf" and isinstance(data, str):
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{data}"}}
    raise _bad("expected a base64 PDF or a plain-text source (URL and file sources are not supported).",
               f"{where}.source")


def _assistant(content: list[Any], where: str) -> Message:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block, bwhere, kind in _typed(content, where):
        if kind == "text":
            texts.append(_text(block, bwhere)["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _bad("expected string 'id' and 'name'.", bwhere)
            if not isinstance(block.get("input"), dict):
                raise _bad("expected an object.", f"{bwhere}.input")
            calls.append({"id": block["id"], "type": "function",
                          "function": {"name": block["name"], "arguments": orjson.dumps(block["input"]).decode()}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise _bad(f"expected a block of type text, tool_use or thinking, but got {kind!r}.", f"{bwhere}.type")
    text: Any = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts] if texts else None
    message: Message = {"role": "assistant", "content": "" if text is None and not calls else text}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad(f"expected an array, but got {typename(tools)}.", "tools")
    out = []
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"expected an object, but got {typename(tool)}.", f"tools[{k}]")
        if tool.get("type", "custom") not in ("custom", None):
            raise _bad(f"'{tool['type']}' is a server tool; this gateway supports client tools only.", f"tools[{k}].type")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad("Field required: a non-empty string.", f"tools[{k}].name")
        if not isinstance(tool.get("input_schema"), dict):
            raise _bad("Field required: an object (a JSON schema).", f"tools[{k}].input_schema")
        fn: dict[str, Any] = {"name": tool["name"]}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        fn["parameters"] = tool["input_schema"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, out: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise _bad("Field required: the name of the tool to use.", "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise _bad("expected an object whose 'type' is auto, any, tool or none.", "tool_choice.type")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
