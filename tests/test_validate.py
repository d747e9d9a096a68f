"""Request validation: what a chat / embeddings request must have, each problem naming its ``param``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stellwerk.errors import InvalidRequestError
from stellwerk.usage import prompt_chars
from stellwerk.validate import validate_chat, validate_embeddings

USER = {"role": "user", "content": "Hi"}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "chat", "messages": [USER], **fields}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


VALID_CHATS = [
    chat(),
    chat(stream=True, stream_options={"include_usage": True}),
    chat(temperature=0, top_p=1, n=2, max_tokens=5, seed=-3, stop=["\n"], presence_penalty=-2, frequency_penalty=2,
         logit_bias={"50256": -100}, user="u", logprobs=True, top_logprobs=3, metadata={"a": "b"}),
    chat(temperature=None, max_tokens=None, stop=None, tools=None, tool_choice=None, response_format=None),
    chat(tools=[TOOL], tool_choice="required", parallel_tool_calls=False),
    chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
    chat(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Really."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
        ]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "It is 42."},
    ]),
    chat(vendor_extension={"anything": [1, 2]}),  # unknown parameters pass through
]


@pytest.mark.parametrize("body", VALID_CHATS)
def test_valid_chat_requests(body: dict[str, Any]) -> None:
    model, stream, chars = validate_chat(body)
    assert model == "chat"
    assert stream is (body.get("stream") is True)
    assert chars == prompt_chars(body)  # counted on the way, as the estimate counts them


INVALID_CHATS: list[tuple[Any, str | None, str]] = [
    ([], None, "must be a JSON object"),
    ("text", None, "must be a JSON object"),
    (without(chat(), "model"), "model", "Missing required parameter: 'model'"),
    (chat(model=3), "model", "expected a non-empty string"),
    (chat(model=""), "model", "non-empty string"),
    (without(chat(), "messages"), "messages", "Missing required parameter: 'messages'"),
    (chat(messages={"role": "user"}), "messages", "expected an array"),
    (chat(messages=[]), "messages", "empty array"),
    (chat(messages=["hi"]), "messages[0]", "expected an object"),
    (chat(messages=[{"content": "x"}]), "messages[0].role", "Missing required parameter"),
    (chat(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "but got 'robot'"),
    (chat(messages=[USER, {"role": "user"}]), "messages[1].content", "Missing required parameter"),
    (chat(messages=[{"role": "user", "content": 5}]), "messages[0].content", "string or an array"),
    (chat(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]", "expected an object"),
    (chat(messages=[{"role": "user", "content": [{"type": "video"}]}]), "messages[0].content[0].type", "'video'"),
    (chat(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text", "string"),
    (chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
     "messages[0].content[0].image_url", "URL"),
    (chat(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id", "Missing required"),
    (chat(messages=[{"role": "assistant", "content": None}]), "messages[0].content", "needs 'content' or"),
    (chat(messages=[{"role": "user", "content": "x", "tool_calls": []}]), "messages[0].tool_calls", "assistant"),
    (chat(messages=[{"role": "assistant", "tool_calls": [{"function": {}}]}]), "messages[0].tool_calls[0].function",
     "function.name"),
    (chat(temperature=2.5), "temperature", "greater than the maximum of 2"),
    (chat(temperature=-0.1), "temperature", "less than the minimum of 0"),
    (chat(temperature="hot"), "temperature", "expected a number, but got string"),
    (chat(temperature=True), "temperature", "expected a number, but got boolean"),
    (chat(top_p=1.5), "top_p", "maximum"),
    (chat(n=True), "n", "expected an integer, but got boolean"),
    (chat(n=0), "n", "minimum"),
    (chat(max_tokens=1.5), "max_tokens", "expected an integer, but got number"),
    (chat(max_tokens=0), "max_tokens", "minimum"),
    (chat(seed="1"), "seed", "integer"),
    (chat(top_logprobs=21), "top_logprobs", "maximum"),
    (chat(logprobs=1), "logprobs", "boolean"),
    (chat(stream="yes"), "stream", "boolean"),
    (chat(user=5), "user", "string"),
    (chat(logit_bias=[1]), "logit_bias", "object"),
    (chat(stop=5), "stop", "string or an array of strings"),
    (chat(stop=["a", 1]), "stop", "string or an array of strings"),
    (chat(stream_options={"include_usage": True}), "stream_options", "only allowed when 'stream' is enabled"),
    (chat(stream=False, stream_options={"include_usage": True}), "stream_options", "only allowed"),
    (chat(stream=True, stream_options={"include_usage": "yes"}), "stream_options.include_usage", "boolean"),
    (chat(stream=True, stream_options=[]), "stream_options", "object"),
    (chat(tools={"type": "function"}), "tools", "expected an array"),
    (chat(tools=["f"]), "tools[0]", "expected"),
    (chat(tools=[{"type": "retrieval", "function": {"name": "f"}}]), "tools[0]", "expected"),
    (chat(tools=[{"type": "function", "function": {"name": ""}}]), "tools[0].function.name", "Missing"),
    (chat(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
     "tools[0].function.parameters", "JSON schema"),
    (chat(tool_choice="sometimes"), "tool_choice", "'none', 'auto', 'required'"),
    (chat(tool_choice=5), "tool_choice", "'none', 'auto', 'required'"),
    (chat(response_format="json"), "response_format.type", "json_schema"),
    (chat(response_format={"type": "xml"}), "response_format.type", "json_schema"),
]


@pytest.mark.parametrize(("body", "param", "message"), INVALID_CHATS)
def test_invalid_chat_requests_name_the_param(body: Any, param: str | None, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_chat(body)
    assert info.value.param == param
    assert message in info.value.message
    assert info.value.status == 400


@pytest.mark.parametrize(("body", "param"), [
    (chat(tool_choice=[]), "tool_choice"),
    (chat(tool_choice=["auto"]), "tool_choice"),
    (chat(response_format={"type": ["json_object"]}), "response_format.type"),
    (chat(response_format={"type": {}}), "response_format.type"),
    (chat(messages=[{"role": "user", "content": [{"type": ["text"], "text": "x"}]}]), "messages[0].content[0].type"),
    (chat(messages=[{"role": "user", "content": [{"type": {"a": 1}}]}]), "messages[0].content[0].type"),
])
def test_unhashable_values_are_invalid_requests_not_crashes(body: Any, param: str) -> None:
    """JSON arrays/objects where a string is expected must give a 400, not a TypeError (a 500)."""
    with pytest.raises(InvalidRequestError) as info:
        validate_chat(body)
    assert info.value.param == param


# -- embeddings --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"model": "e", "input": "text"},
    {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8},
    {"model": "e", "input": [1, 2, 3]},
    {"model": "e", "input": [[1, 2], [3]], "encoding_format": "float", "user": "u"},
])
def test_valid_embeddings_requests(body: dict[str, Any]) -> None:
    assert validate_embeddings(body) == "e"


@pytest.mark.parametrize(("body", "param"), [
    ([], None),
    ({"input": "x"}, "model"),
    ({"model": 1, "input": "x"}, "model"),
    ({"model": "e"}, "input"),
    ({"model": "e", "input": ""}, "input"),
    ({"model": "e", "input": []}, "input"),
    ({"model": "e", "input": ["a", ""]}, "input"),
    ({"model": "e", "input": ["a", 1]}, "input"),
    ({"model": "e", "input": [True, False]}, "input"),
    ({"model": "e", "input": [[]]}, "input"),
    ({"model": "e", "input": "x", "encoding_format": "hex"}, "encoding_format"),
    ({"model": "e", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "e", "input": "x", "dimensions": True}, "dimensions"),
])
def test_invalid_embeddings_requests_name_the_param(body: Any, param: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_embeddings(body)
    assert info.value.param == param


# -- properties --------------------------------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6) | st.sampled_from(["user", "tool", "text", "image_url", "function", "auto", "json_object"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "name", "url", "x"]), inner,
                                                                 max_size=3),
    max_leaves=8,
)
RICH_CHAT = chat(
    messages=VALID_CHATS[7]["messages"], stream=True, stream_options={"include_usage": True}, temperature=1,
    tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}, stop=["x"],
    response_format={"type": "json_object"}, max_tokens=10, logit_bias={"1": 1},
)
RICH_EMBEDDINGS = {"model": "e", "input": ["a", "b"], "encoding_format": "float", "dimensions": 4}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value where another value could go (existing keys/items and one new key)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        found.append((*prefix, "new_key"))
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]] if path[0] in (value if isinstance(value, dict) else range(len(value)))
                             else None, path[1:], new)
    return copy


@settings(max_examples=200, deadline=None, database=None)
@given(path=st.sampled_from(paths(RICH_CHAT)), value=JSON)
def test_chat_validation_never_crashes(path: tuple[Any, ...], value: Any) -> None:
    """A valid request with any one value replaced is accepted or rejected with InvalidRequestError, nothing else."""
    try:
        validate_chat(replaced(RICH_CHAT, path, value))
    except InvalidRequestError as err:
        assert err.status == 400


@settings(max_examples=100, deadline=None, database=None)
@given(path=st.sampled_from(paths(RICH_EMBEDDINGS)), value=JSON)
def test_embeddings_validation_never_crashes(path: tuple[Any, ...], value: Any) -> None:
    try:
        validate_embeddings(replaced(RICH_EMBEDDINGS, path, value))
    except InvalidRequestError as err:
        assert err.status == 400
