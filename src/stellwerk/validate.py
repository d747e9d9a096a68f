"""Validation of OpenAI-format requests before anything reaches an upstream.

Checks what a request must have and the types of the parameters it may have;
parameters Stellwerk does not know pass through untouched (providers have
extensions). Every problem raises :class:`~stellwerk.errors.InvalidRequestError`
naming the parameter (``messages[2].content[0].image_url``) and what was expected.
"""

from __future__ import annotations

from typing import Any, Final

from stellwerk.errors import InvalidRequestError
from stellwerk.usage import message_chars

__all__ = ["ROLES", "validate_chat", "validate_embeddings"]

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PART_TYPES: Final = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_TOOL_CHOICES: Final = frozenset({"none", "auto", "required"})
_FORMATS: Final = frozenset({"text", "json_object", "json_schema"})

# parameter -> (kind, low, high); kind: "num" (int or float), "int", "bool", "str", "dict"
_SCALARS: Final[dict[str, tuple[str, float | None, float | None]]] = {
    "temperature": ("num", 0.0, 2.0),
    "top_p": ("num", 0.0, 1.0),
    "presence_penalty": ("num", -2.0, 2.0),
    "frequency_penalty": ("num", -2.0, 2.0),
    "n": ("int", 1, 128),
    "max_tokens": ("int", 1, None),
    "max_completion_tokens": ("int", 1, None),
    "seed": ("int", None, None),
    "top_logprobs": ("int", 0, 20),
    "logprobs": ("bool", None, None),
    "parallel_tool_calls": ("bool", None, None),
    "stream": ("bool", None, None),
    "user": ("str", None, None),
    "logit_bias": ("dict", None, None),
    "metadata": ("dict", None, None),
    "stream_options": ("dict", None, None),
}


def _fail(message: str, param: str | None) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _typename(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__)


_ACCEPTS: Final[dict[str, tuple[type, ...]]] = {
    "num": (int, float), "int": (int,), "bool": (bool,), "str": (str,), "dict": (dict,),
}
_EXPECTED: Final = {"num": "a number", "int": "an integer", "bool": "a boolean", "str": "a string", "dict": "an object"}


def _check_scalar(name: str, value: Any, kind: str, low: float | None, high: float | None) -> None:
    if value is None:
        return  # null means "not set" for every optional parameter
    if not isinstance(value, _ACCEPTS[kind]) or (value.__class__ is bool and kind != "bool"):
        raise _fail(f"Invalid type for '{name}': expected {_EXPECTED[kind]}, but got {_typename(value)}.", name)
    number: Any = value
    if low is not None and number < low:
        raise _fail(f"Invalid value for '{name}': {number} is less than the minimum of {low:g}.", name)
    if high is not None and number > high:
        raise _fail(f"Invalid value for '{name}': {number} is greater than the maximum of {high:g}.", name)


def _check_content(content: Any, where: str, role: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _fail(f"Invalid type for '{where}': expected a string or an array of content parts, but got "
                    f"{_typename(content)}.", where)
    for k, part in enumerate(content):
        pwhere = f"{where}[{k}]"
        if not isinstance(part, dict):
            raise _fail(f"Invalid type for '{pwhere}': expected an object, but got {_typename(part)}.", pwhere)
        ptype = part.get("type")
        if not isinstance(ptype, str) or ptype not in _PART_TYPES:
            raise _fail(f"Invalid value for '{pwhere}.type': expected one of {', '.join(sorted(_PART_TYPES))}, "
                        f"but got {ptype!r}.", f"{pwhere}.type")
        if ptype == "text" and not isinstance(part.get("text"), str):
            raise _fail(f"Missing or invalid '{pwhere}.text': expected a string.", f"{pwhere}.text")
        if ptype == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url:
                raise _fail(f"Missing or invalid '{pwhere}.image_url.url': expected a URL or data URI string.",
                            f"{pwhere}.image_url")


def _check_message(message: Any, i: int) -> int:
    """``messages[i]``, and its characters for the prompt estimate (:func:`~stellwerk.usage.message_chars`); the
    common message (a known role, string content, no tool calls) costs a few lookups."""
    if message.__class__ is dict:
        role = message.get("role")
        content = message.get("content")
        if content.__class__ is str and role.__class__ is str and role in _PLAIN_ROLES and "tool_calls" not in message:
            return len(content) + 4
    _check_any_message(message, f"messages[{i}]")
    return message_chars(message)


_PLAIN_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})
"""Roles whose message needs nothing but string content (``tool`` needs its ``tool_call_id``)."""


def _check_any_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise _fail(f"Invalid type for '{where}': expected an object, but got {_typename(message)}.", where)
    role = message.get("role")
    if not isinstance(role, str):
        raise _fail(f"Missing required parameter: '{where}.role'.", f"{where}.role")
    if role not in ROLES:
        raise _fail(f"Invalid value for '{where}.role': expected one of {', '.join(sorted(ROLES))}, "
                    f"but got '{role}'.", f"{where}.role")
    content = message.get("content")
    if "content" not in message and role not in ("assistant",):
        raise _fail(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    _check_content(content, f"{where}.content", role)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise _fail(f"Missing required parameter: '{where}.tool_call_id'.", f"{where}.tool_call_id")
    calls = message.get("tool_calls")
    if calls is not None:
        if role != "assistant" or not isinstance(calls, list):
            raise _fail(f"Invalid '{where}.tool_calls': expected an array on an assistant message.",
                        f"{where}.tool_calls")
        for k, call in enumerate(calls):
            kind = call.get("type", "function") if isinstance(call, dict) else "function"
            key = "custom" if kind == "custom" else "function"
            fn = call.get(key) if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise _fail(f"Missing required parameter: '{where}.tool_calls[{k}].{key}.name'.",
                            f"{where}.tool_calls[{k}].{key}")
    elif role == "assistant" and content is None and "function_call" not in message:
        raise _fail(f"Invalid '{where}': an assistant message needs 'content' or 'tool_calls'.", f"{where}.content")


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise _fail(f"Invalid type for 'tools': expected an array, but got {_typename(tools)}.", "tools")
    for k, tool in enumerate(tools):
        if isinstance(tool, dict) and tool.get("type") == "custom":  # free-form input (OpenAI's custom tools)
            custom = tool.get("custom")
            if not isinstance(custom, dict) or not isinstance(custom.get("name"), str) or not custom["name"]:
                raise _fail(f"Missing required parameter: 'tools[{k}].custom.name'.", f"tools[{k}].custom.name")
            continue
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(fn, dict):
            raise _fail(f"Invalid 'tools[{k}]': expected {{\"type\": \"function\", \"function\": {{...}}}} or "
                        f"{{\"type\": \"custom\", \"custom\": {{...}}}}.", f"tools[{k}]")
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _fail(f"Missing required parameter: 'tools[{k}].function.name'.", f"tools[{k}].function.name")
        if "parameters" in fn and fn["parameters"] is not None and not isinstance(fn["parameters"], dict):
            raise _fail(f"Invalid type for 'tools[{k}].function.parameters': expected an object (a JSON schema).",
                        f"tools[{k}].function.parameters")


def _model_of(body: Any) -> str:
    if not isinstance(body, dict):
        raise _fail(f"The request body must be a JSON object, but got {_typename(body)}.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("Missing required parameter: 'model'." if model is None else
                    f"Invalid type for 'model': expected a non-empty string, but got {_typename(model)}.", "model")
    return model


def validate_chat(body: Any) -> tuple[str, bool, int]:
    """Validate a Chat Completions request; return ``(model, stream, characters)``: the characters of its messages
    as :func:`~stellwerk.usage.prompt_chars` counts them, counted on the way (the limits stage's estimate)."""
    model = _model_of(body)
    messages = body.get("messages")
    if messages is None:
        raise _fail("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list):
        raise _fail(f"Invalid type for 'messages': expected an array, but got {_typename(messages)}.", "messages")
    if not messages:
        raise _fail("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages")
    chars = 0
    for i, message in enumerate(messages):
        chars += _check_message(message, i)
    for name, value in body.items():
        spec = _SCALARS.get(name)
        if spec is not None and value is not None:
            _check_scalar(name, value, spec[0], spec[1], spec[2])
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise _fail("Invalid type for 'stop': expected a string or an array of strings.", "stop")
    if body.get("tools") is not None:
        _check_tools(body["tools"])
    choice = body.get("tool_choice")
    if choice is not None and not ((isinstance(choice, str) and choice in _TOOL_CHOICES) or isinstance(choice, dict)):
        raise _fail("Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or an object naming a "
                    "function.", "tool_choice")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str) or fmt["type"] not in _FORMATS):
        raise _fail("Invalid value for 'response_format': expected an object whose 'type' is one of text, "
                    "json_object, json_schema.", "response_format.type")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise _fail("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
        if "include_usage" in options and not isinstance(options["include_usage"], bool):
            raise _fail("Invalid type for 'stream_options.include_usage': expected a boolean.",
                        "stream_options.include_usage")
    return model, stream, chars


def validate_embeddings(body: Any) -> str:
    """Validate an Embeddings request; return the model name."""
    model = _model_of(body)
    data = body.get("input")
    if data is None:
        raise _fail("Missing required parameter: 'input'.", "input")
    valid = (isinstance(data, str) and data != "") or (
        isinstance(data, list) and len(data) > 0 and (
            all(isinstance(x, str) and x != "" for x in data)
            or all(isinstance(x, int) and not isinstance(x, bool) for x in data)
            or all(isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x)
                   for x in data)))
    if not valid:
        raise _fail("Invalid 'input': expected a non-empty string, an array of non-empty strings, an array of "
                    "token ids, or an array of token-id arrays.", "input")
    fmt = body.get("encoding_format")
    if fmt is not None and fmt not in ("float", "base64"):
        raise _fail("Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format")
    dims = body.get("dimensions")
    if dims is not None:
        _check_scalar("dimensions", dims, "int", 1, None)
    return model
