"""Reading Stellwerk's canonical request (OpenAI Chat Completions, as dicts), for adapters that translate it.

Every translating adapter asks the same questions of a request: the text of a
message, its images, the tool calls an assistant made and the names behind
tool results, the stop sequences, the output limit, the JSON mode. They are
answered once here. Requests were validated before (``stellwerk.validate``),
so only shapes validation lets through are handled; anything a provider cannot
express raises an :class:`~stellwerk.errors.UpstreamError` with ``MOVE_ON``,
so that another deployment may answer.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any

import orjson

from stellwerk.errors import Outcome, UpstreamError

__all__ = [
    "Image",
    "append_turn",
    "arguments_object",
    "content_parts",
    "data_uri",
    "json_mode",
    "max_output_tokens",
    "reject_n",
    "result_object",
    "sampling",
    "stop_sequences",
    "text_of",
    "tool_choice",
    "tool_names",
    "unsupported",
]

Image = tuple[str, str]
"""An inline image: ``(mime type, base64 data)``."""


def unsupported(provider: str, what: str, param: str | None = None) -> UpstreamError:
    """This deployment cannot express the request; another may (``MOVE_ON``). ``param`` names the request's
    parameter at fault: when every deployment refuses so, the client gets a 400 naming it."""
    return UpstreamError(Outcome.MOVE_ON, f"{provider} does not support {what}", reason="unsupported", param=param)


def data_uri(url: str, provider: str) -> Image:
    """``data:image/png;base64,AAAA`` → ``("image/png", "AAAA")``. Other URLs cannot be sent inline."""
    if not url.startswith("data:"):
        raise unsupported(provider, "image URLs (only data: URIs with base64 content)", "messages")
    head, sep, data = url[5:].partition(",")
    mime, _, encoding = head.partition(";")
    if not sep or encoding != "base64" or not mime:
        raise unsupported(provider, "data: URIs without a media type or base64 encoding", "messages")
    try:
        b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamError(Outcome.CLIENT_ERROR, "an image data: URI does not hold valid base64",
                            status=400) from None
    return mime, data


def content_parts(content: Any, provider: str) -> list[str | Image]:
    """A message's content as a list of texts (``str``) and inline images, in order (empty texts dropped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    parts: list[str | Image] = []
    for part in content:
        kind = part.get("type")
        if kind == "text" or kind == "refusal":
            text = part.get("text") if kind == "text" else part.get("refusal")
            if isinstance(text, str) and text:
                parts.append(text)
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(data_uri(str(url), provider))
        else:
            raise unsupported(provider, f"'{kind}' content parts", "messages")
    return parts


def text_of(content: Any) -> str:
    """The text of a message's content (text parts joined by newlines; images ignored)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(t for t in texts if isinstance(t, str))


def arguments_object(arguments: Any) -> dict[str, Any]:
    """A tool call's ``arguments`` (a JSON string in OpenAI's format) as the object providers expect."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        raise UpstreamError(Outcome.CLIENT_ERROR, "a tool call's 'arguments' is not valid JSON",
                            status=400) from None
    if not isinstance(value, dict):
        raise UpstreamError(Outcome.CLIENT_ERROR, "a tool call's 'arguments' is not a JSON object", status=400)
    return value


def result_object(content: Any) -> dict[str, Any] | None:
    """A tool result that is a JSON object, as that object (providers that take structured results); else None."""
    text = text_of(content)
    if not text.startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def append_turn(turns: list[dict[str, Any]], role: str, items: list[dict[str, Any]], key: str) -> None:
    """Append ``items`` (under ``key``) as a turn of ``role``; a turn of the same role as the last one is merged
    into it, for providers that want strictly alternating roles. Empty turns are dropped."""
    if not items:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1][key].extend(items)
    else:
        turns.append({"role": role, key: items})


def tool_names(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Tool call id → function name, from the assistant messages (tool results carry only the id)."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if isinstance(call.get("id"), str) and isinstance(function.get("name"), str):
                names[call["id"]] = function["name"]
    return names


def stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def max_output_tokens(body: dict[str, Any]) -> int | None:
    """``max_completion_tokens``, else the older ``max_tokens``."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def sampling(body: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """The sampling parameters a request sets, under the provider's names (``names``: OpenAI name → wire name).

    ``max_tokens`` stands for :func:`max_output_tokens`, ``stop`` for :func:`stop_sequences` (a list).
    """
    values = {name: body.get(name) for name in names}
    values["max_tokens"] = max_output_tokens(body)
    values["stop"] = stop_sequences(body) or None
    return {wire: values[name] for name, wire in names.items() if values[name] is not None}


def json_mode(body: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """``(wants JSON, its schema or None)`` from ``response_format``."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return False, None
    if fmt.get("type") == "json_object":
        return True, None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return True, schema if isinstance(schema, dict) else None
    return False, None


def tool_choice(body: dict[str, Any]) -> tuple[str, str | None]:
    """``("auto" | "none" | "required", forced function name or None)``."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        return "required", name if isinstance(name, str) else None
    if choice in ("none", "required"):
        return str(choice), None
    return "auto", None


def reject_n(body: dict[str, Any], provider: str) -> None:
    """Providers that answer one choice only cannot serve ``n > 1``."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise unsupported(provider, "n > 1 (several choices per request)", "n")


def reject_custom_tools(body: dict[str, Any], provider: str) -> None:
    """Custom tools (free-form input, OpenAI's ``type: custom``) exist only in OpenAI's format: refused elsewhere."""
    if any(isinstance(t, dict) and t.get("type", "function") != "function" for t in body.get("tools") or ()):
        raise unsupported(provider, "custom tools (type 'custom')", "tools")
    for message in body.get("messages") or ():
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if any(isinstance(c, dict) and c.get("type", "function") != "function" for c in calls or ()):
            raise unsupported(provider, "custom tool calls (type 'custom')", "messages")


def reject_logprobs(body: dict[str, Any], provider: str) -> None:
    """Providers whose token log probabilities are not translated cannot serve ``logprobs``: refused, never
    dropped (another deployment may serve them; if none can, the client gets a 400 naming the parameter)."""
    if body.get("logprobs") is True or body.get("top_logprobs"):
        raise unsupported(provider, "logprobs (token log probabilities)", "logprobs")
