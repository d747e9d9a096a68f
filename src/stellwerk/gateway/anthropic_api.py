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
The ``x-api-key`` the Anthropic SDKs send is not checked (gateway auth comes later).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from stellwerk.errors import ModelNotFoundError, StellwerkError, UpstreamError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Operation, Result, Stream, merge_headers
from stellwerk.providers.anthropic.inbound import to_chat_request
from stellwerk.providers.anthropic.outbound import MessageEvents, error_body, to_message
from stellwerk.providers.anthropic.wire import anthropic_usage
from stellwerk.redact import redact
from stellwerk.routing import Router
from stellwerk.tokens import count_prompt_tokens
from stellwerk.usage import Usage, estimate_tokens

from .errors import error_response

__all__ = ["AnthropicAPI"]


class AnthropicAPI:
    """The two routes. The gateway lends its readers of the request body (JSON, raising InvalidRequestError)
    and of the ``x-stellwerk-timeout`` header, so both APIs read requests alike."""

    def __init__(self, router: Router, parse_json: Callable[[Request], Any],
                 timeout_of: Callable[[Request], float | None]) -> None:
        self.router = router
        self._parse_json = parse_json
        self._timeout_of = timeout_of

    async def messages(self, request: Request, rid: str) -> Response | StreamingResponse:
        headers = [("x-request-id", rid), ("request-id", rid)]
        try:
            body, _ = to_chat_request(self._parse_json(request))
            call = self.router.call(Operation.CHAT, body, request_id=rid, timeout=self._timeout_of(request),
                                    headers=request.headers)
            result = await self.router.handle(call)
        except StellwerkError as err:
            return _error(err, headers)
        model = call.model
        if not isinstance(result, Result):
            events = MessageEvents(f"msg_{rid}", model, estimate_tokens(call.facts.prompt_chars))
            return StreamingResponse(_sse(result, events), headers=merge_headers([
                *headers,
                ("x-stellwerk-deployment", result.deployment),
                ("x-stellwerk-attempts", str(result.attempts)),
                ("x-stellwerk-route", result.route),
            ], result.headers))
        usage = anthropic_usage(result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.cached_tokens)
        message = to_message(result.data, f"msg_{rid}", model, usage)
        return Response(200, orjson.dumps(message), merge_headers([
            *headers,
            ("x-stellwerk-deployment", result.deployment),
            ("x-stellwerk-attempts", str(result.attempts)),
            ("x-stellwerk-cost", f"{result.cost:.8f}"),
            ("x-stellwerk-route", result.route),
        ], result.headers))

    async def count_tokens(self, request: Request, rid: str) -> Response:
        headers = [("x-request-id", rid), ("request-id", rid)]
        try:
            body, _ = to_chat_request(self._parse_json(request), count_only=True)
            if body["model"] not in self.router.models:
                raise ModelNotFoundError(body["model"], self.router.models)
        except StellwerkError as err:
            return _error(err, headers)
        # Off the event loop: the first count loads the BPE tables, and long prompts take a while.
        tokens = await asyncio.to_thread(count_prompt_tokens, body)
        return Response(200, orjson.dumps({"input_tokens": tokens}), headers)


async def _sse(stream: Stream, events: MessageEvents) -> AsyncIterator[bytes]:
    """The Anthropic event stream of a routed chat stream; a break-off ends it with an ``error`` event."""
    try:
        yield events.start()
        async for chunk in stream:
            data = events.feed(chunk)
            if data:
                yield data
    except StellwerkError as err:
        message = (f"The upstream stream from deployment '{stream.deployment}' broke off and could not be "
                   f"continued elsewhere: {err.message}")
        status = err.upstream_status if isinstance(err, UpstreamError) else None
        yield events.error(status or 502, redact(message))
        return
    finally:
        await stream.aclose()
    usage = stream.usage or Usage()
    yield events.finish(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)


def _error(err: StellwerkError, headers: list[tuple[str, str]]) -> Response:
    """The gateway's error answer (status, ``retry-after``, attempts) with an Anthropic-shaped body."""
    response = error_response(err, headers)
    response.body = orjson.dumps(error_body(err.status, err.message))
    return response
