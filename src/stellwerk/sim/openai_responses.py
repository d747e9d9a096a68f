"""The simulated OpenAI's Responses API: ``POST /v1/responses``, answered natively (a ``response`` object, or the
Responses event stream), so that deployments with ``native_responses`` can be tested against it.

The request is read with the gateway's own translation to chat (:mod:`stellwerk.providers.responses.inbound`;
what it refuses is a 400 here too), planned like any chat request, and written back with the gateway's
translation of chat answers (:mod:`stellwerk.providers.responses.outbound`). Ids say ``resp_sim...``, so a
test can tell a native answer from one the gateway translated.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from stellwerk.errors import InvalidRequestError
from stellwerk.providers.responses import ResponseEvents, to_chat_request, to_response
from stellwerk.providers.responses.outbound import skeleton
from stellwerk.sim.openai_errors import WireError
from stellwerk.sim.protocol import StreamPlan, Turn

__all__ = ["ResponsesWriter", "chat_body", "response_body", "response_stream"]


def chat_body(body: bytes) -> bytes:
    """A Responses request as the chat request it amounts to; WireError (400) for what cannot be read."""
    try:
        request = to_chat_request(orjson.loads(body))
    except orjson.JSONDecodeError:
        raise WireError(400, "We could not parse the JSON body of your request.", "invalid_request_error") from None
    except InvalidRequestError as err:
        raise WireError(400, err.message, "invalid_request_error", err.param) from None
    return orjson.dumps(request.chat)


def _base(turn: Turn) -> dict[str, Any]:
    return skeleton(f"resp_sim{turn.seq:020d}", int(turn.created), turn.chat.model, {}, True, None)


def response_body(chat_completion: bytes, turn: Turn) -> bytes:
    """The ``response`` object of the sim's chat answer."""
    response, _ = to_response(orjson.loads(chat_completion), _base(turn))
    return orjson.dumps(response)


class ResponsesWriter:
    """Frames the sim's chat deltas (``{"content": ...}``, tool-argument deltas) as Responses events."""

    __slots__ = ("_events",)

    def __init__(self, events: ResponseEvents) -> None:
        self._events = events

    def feed(self, delta: dict[str, Any], finish: str | None = None, usage: dict[str, Any] | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._events.feed({"choices": [choice], "usage": usage})

    def event(self, delta: bytes) -> bytes:
        return self.feed(orjson.loads(delta))

    def events(self, deltas: Sequence[bytes]) -> bytes:
        return b"".join(map(self.event, deltas))

    def broken(self) -> bytes:
        event = self.feed({"content": "sim"})
        return event[: len(event) // 2] + b"\n\n"

    def error(self, status: int) -> bytes:
        return self._events.error(f"simulated server error ({status})")


def response_stream(turn: Turn, deltas: Sequence[bytes], finish: str,
                    tool_start: tuple[str, str] | None) -> StreamPlan:
    """The Responses event stream of the sim's chat answer (``tool_start``: the tool call's id and name)."""
    events = ResponseEvents(_base(turn))
    writer = ResponsesWriter(events)
    first = events.start()
    if tool_start is not None:
        call = {"index": 0, "id": tool_start[0], "type": "function", "function": {"name": tool_start[1], "arguments": ""}}
        first += writer.feed({"tool_calls": [call]})
    usage = {"prompt_tokens": turn.chat.prompt_tokens, "completion_tokens": turn.reply.completion_tokens}
    writer.feed({}, finish, usage)
    return StreamPlan(writer, first, deltas, _Closing(events), "text/event-stream")


class _Closing:
    """The closing events, written when they are sent: after the deltas, whose text they repeat."""

    __slots__ = ("_events",)

    def __init__(self, events: ResponseEvents) -> None:
        self._events = events

    def __iter__(self) -> Iterator[bytes]:
        yield self._events.finish()[0]
