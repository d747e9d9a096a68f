"""The Anthropic-compatible front door: Anthropic's Messages API over the router, to any provider.

=======  ===========================  ==============================================
method   path                         answer
=======  ===========================  ==============================================
POST     /v1/messages                 an Anthropic ``message``, or its SSE events
POST     /v1/messages/count_tokens    ``{"input_tokens": N}`` (an estimate, below)
=======  ===========================  ==============================================

A request is validated and translated to the canonical (OpenAI) format by
:mod:`stellwerk.providers.anthropic.inbound`, routed like ``/v1/chat/completions``
(so any deployment of any provider may answer), and the answer translated back
by :mod:`stellwerk.providers.anthropic.outbound`. Answers carry ``x-request-id``
(also as Anthropic's ``request-id``), ``x-stellwerk-deployment`` and
``x-stellwerk-attempts``; complete ones ``x-stellwerk-cost``.

Errors have Anthropic's shape, ``{"type": "error", "error": {"type", "message"}}``:
400 ``invalid_request_error`` (naming the field), 404 ``not_found_error`` (unknown
model), 429 ``rate_limit_error``, 5xx ``api_error`` / ``overloaded_error`` (503). A
stream that breaks off after it began ends with an ``error`` event instead of
``message_stop``. (Bodies over ``server.max_body_size`` are refused by the HTTP
layer, before any route, with its own 413 body.)

``count_tokens`` counts the translated prompt with :func:`stellwerk.tokens.count_prompt_tokens`
(o200k BPE plus OpenAI's per-message overhead): Claude's own tokenizer is not
public, so this is an estimate, usually a little under Anthropic's count.
The ``x-api-key`` the Anthropic SDKs send is the gateway key when ``server.master_key`` is set
(:mod:`stellwerk.pipeline.auth`); errors of keys and limits keep their status (401, 403, 429) and
``x-ratelimit-*`` headers, with Anthropic's types (``authentication_error``, ``permission_error``,
``rate_limit_error``; ``insufficient_quota`` for a spent budget).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from stellwerk.errors import ModelNotFoundError, StellwerkError, UpstreamError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Stream, broke_off, is_result
from stellwerk.providers.anthropic.inbound import to_chat_request
from stellwerk.providers.anthropic.outbound import MessageEvents, error_body, to_message
from stellwerk.providers.anthropic.wire import anthropic_usage
from stellwerk.redact import redact
from stellwerk.tokens import count_prompt_tokens
from stellwerk.usage import Usage, estimate_tokens

from .door import FrontDoor
from .errors import answer_headers, error_response

__all__ = ["AnthropicAPI", "anthropic_error"]


class AnthropicAPI(FrontDoor):
    """The two routes, reading requests with the gateway's readers (:class:`~.door.FrontDoor`)."""

    async def messages(self, request: Request, rid: str) -> Response | StreamingResponse:
        headers = [("x-request-id", rid), ("request-id", rid)]
        try:
            principal = self._caller(request)
            body, _ = to_chat_request(self._parse_json(request))
            call = self.chat_call(request, rid, body, principal)
            result = await self.router.handle(call)
        except StellwerkError as err:
            return anthropic_error(err, headers)
        model = call.model
        if not is_result(result):
            events = MessageEvents(f"msg_{rid}", model, estimate_tokens(call.facts.prompt_chars))
            return StreamingResponse(_sse(result, events), headers=[*answer_headers(result, call), ("request-id", rid)],
                                     head=result.head)
        usage = anthropic_usage(result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.cached_tokens)
        message = to_message(result.data, f"msg_{rid}", _answered_by(result.data, model), usage)
        return Response(200, orjson.dumps(message), [*answer_headers(result, call), ("request-id", rid)],
                        head=result.head)

    async def count_tokens(self, request: Request, rid: str) -> Response:
        headers = [("x-request-id", rid), ("request-id", rid)]
        try:
            body, _ = to_chat_request(self._parse_json(request), count_only=True)
            if body["model"] not in self.router.models:
                raise ModelNotFoundError(body["model"], self.router.models)
        except StellwerkError as err:
            return anthropic_error(err, headers)
        # Off the event loop: the first count loads the BPE tables, and long prompts take a while.
        tokens = await asyncio.to_thread(count_prompt_tokens, body)
        return Response(200, orjson.dumps({"input_tokens": tokens}), headers)


async def _sse(stream: Stream, events: MessageEvents) -> AsyncIterator[bytes]:
    """The Anthropic event stream of a routed chat stream; a break-off ends it with an ``error`` event."""
    started = False
    try:
        async for chunk in stream:
            if not started:  # message_start names the model that answers: the first chunk's
                events.model = _answered_by(chunk, events.model)
                events.prompt(getattr(stream, "prompt_usage", None))
                started = True
                yield events.start()
            data = events.feed(chunk)
            if data:
                yield data
    except StellwerkError as err:
        message = broke_off(stream.deployment, err.message)
        status = err.upstream_status if isinstance(err, UpstreamError) else None
        yield (b"" if started else events.start()) + events.error(status or 502, redact(message))
        return
    finally:
        await stream.aclose()
    usage = stream.usage or Usage()
    yield (b"" if started else events.start()) + events.finish(usage.completion_tokens)


def _answered_by(data: dict[str, Any], asked: str) -> str:
    """The model an answer names: the upstream's own name, as OpenAI-format answers carry it (else the one asked)."""
    model = data.get("model")
    return model if isinstance(model, str) and model else asked


def anthropic_error(err: StellwerkError, headers: list[tuple[str, str]]) -> Response:
    """The gateway's error answer (status, ``retry-after``, attempts) with an Anthropic-shaped body."""
    response = error_response(err, headers)
    body = error_body(err.status, err.message)
    if err.code == "insufficient_quota":  # a spent budget keeps its OpenAI type: Anthropic has none for it
        body["error"]["type"] = "insufficient_quota"
    response.body = orjson.dumps(body)
    return response
