"""A Responses API request → a canonical (OpenAI chat) request, validated.

==================================  ============================================================
Responses                           chat
==================================  ============================================================
``instructions``                    a leading system message
``input`` string                    one user message
``input`` message items             messages (``input_text``/``output_text`` → text parts,
                                    ``input_image`` → ``image_url`` parts)
``function_call`` items             an assistant message's ``tool_calls`` (consecutive ones merge)
``function_call_output`` items      ``tool`` messages
``reasoning`` items                 dropped (a model's own reasoning, meaningless to another one)
``tools`` (function)                function tools
``tool_choice``                     auto / none / required / a named function
``text.format``                     ``response_format`` (text, json_object, json_schema)
``max_output_tokens``               ``max_tokens``
``reasoning.effort``                ``reasoning_effort``
``temperature``, ``top_p``,         the same
``parallel_tool_calls``, ``user``
``safety_identifier``               ``user``
==================================  ============================================================

``store``, ``previous_response_id``, ``metadata`` and ``stream`` are read by the
front door. ``include``, ``truncation``, ``service_tier``, ``prompt_cache_key`` and
``background: false`` change nothing here and are accepted. Anything else, and
whatever chat cannot express (built-in tools, files, ``background: true``), is a
400 naming it: never dropped silently.
"""

from __future__ import annotations

from typing import Any

import msgspec

from stellwerk.errors import InvalidRequestError

__all__ = ["ResponsesRequest", "to_chat_request"]

_ACCEPTED = frozenset({"include", "truncation", "service_tier", "prompt_cache_key", "background", "stream_options"})
_HANDLED = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens",
                      "reasoning", "temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier",
                      "store", "previous_response_id", "metadata", "stream"})
_ROLES = frozenset({"user", "system", "developer", "assistant"})


class ResponsesRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the front door needs besides the chat request."""

    chat: dict[str, Any]
    stream: bool
    store: bool
    previous_response_id: str | None
    echo: dict[str, Any]
    """Request fields a Response object repeats (instructions, tools, tool_choice, text, ...)."""
    input_messages: list[dict[str, Any]]
    """This request's own messages (what a later ``previous_response_id`` continues from)."""


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


def _text_parts(content: Any, where: str, role: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(where, "expected a string or an array of content parts")
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}[{i}]"
        if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "refusal" and role == "assistant" and isinstance(part.get("refusal"), str):
            parts.append({"type": "text", "text": part["refusal"]})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image: dict[str, Any] = {"url": part["image_url"]}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_image":
            raise _bad(f"{at}.image_url", "images are accepted as URLs or data: URIs (file ids are not supported)")
        else:
            raise _bad(f"{at}.type", f"unsupported content part {kind!r} (input_text, output_text, input_image)")
    if role == "assistant" and all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _messages(items: Any) -> list[dict[str, Any]]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise _bad("input", "expected a string or a non-empty array of items")
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, "expected an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise _bad(f"{where}.role", f"expected one of {', '.join(sorted(_ROLES))}")
            messages.append({"role": role, "content": _text_parts(item.get("content"), f"{where}.content", role)})
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _bad(f"{where}.{key}", "expected a string")
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str):
                raise _bad(f"{where}.call_id", "expected a string")
            if not isinstance(output, str):
                raise _bad(f"{where}.output", "expected a string")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue
        else:
            raise _bad(f"{where}.type", f"unsupported item type {kind!r} (message, function_call, "
                                        "function_call_output, reasoning)")
    return messages


def _tools(tools: Any, chat: dict[str, Any]) -> None:
    if not isinstance(tools, list):
        raise _bad("tools", "expected an array")
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise _bad(f"tools[{i}]", f"only function tools can be served here, got {kind!r}")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
        for key in ("description", "strict"):
            if tool.get(key) is not None:
                fn[key] = tool[key]
        functions.append({"type": "function", "function": fn})
    if functions:
        chat["tools"] = functions


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if choice in ("auto", "none", "required"):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _bad("tool_choice", "expected auto, none, required or {\"type\": \"function\", \"name\": ...}")


def _format(text: Any, chat: dict[str, Any]) -> None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if text is not None and not isinstance(text, dict):
        raise _bad("text", "expected an object")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        spec = {"name": fmt.get("name") or "output", "schema": fmt["schema"]}
        if fmt.get("strict") is not None:
            spec["strict"] = fmt["strict"]
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    else:
        raise _bad("text.format", "expected type text, json_object, or json_schema with a schema")


def _options(body: dict[str, Any], chat: dict[str, Any]) -> None:
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            chat[key] = body[key]
    if body.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    limit = body.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise _bad("max_output_tokens", "expected an integer >= 1")
        chat["max_tokens"] = limit
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _bad("reasoning", "expected an object")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str):
        chat["user"] = user


def to_chat_request(body: Any, earlier: list[dict[str, Any]] | None = None) -> ResponsesRequest:
    """Validate a Responses request; ``earlier``: the stored conversation ``previous_response_id`` names."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    unknown = sorted(k for k in body if k not in _HANDLED and k not in _ACCEPTED)
    if unknown:
        raise _bad(unknown[0], "not supported by this gateway")
    if body.get("background"):
        raise _bad("background", "background responses are not supported")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "expected a non-empty string")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise _bad("instructions", "expected a string")
    own = _messages(body.get("input"))
    system = [{"role": "system", "content": instructions}] if instructions else []
    chat: dict[str, Any] = {"model": model, "messages": [*system, *(earlier or []), *own]}
    if body.get("tools") is not None:
        _tools(body["tools"], chat)
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
    _format(body.get("text"), chat)
    _options(body, chat)
    stream = body.get("stream") is True
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise _bad("previous_response_id", "expected a string")
    store = body.get("store", True)
    if not isinstance(store, bool):
        raise _bad("store", "expected a boolean")
    echo = {key: body.get(key) for key in ("instructions", "tools", "tool_choice", "text", "temperature", "top_p",
                                           "max_output_tokens", "reasoning", "parallel_tool_calls", "metadata")}
    return ResponsesRequest(chat=chat, stream=stream, store=store, previous_response_id=previous, echo=echo,
                            input_messages=own)
