"""The OpenAI Responses API front door: ``POST /v1/responses``, served by translation to chat on every provider.

The Vercel AI SDK (``openai(model)``), the OpenAI Agents SDK, LangChain with ``use_responses_api`` and
``litellm.responses`` call it. The request is translated to a chat request
(:mod:`stellwerk.providers.responses.inbound`), routed like any chat, and the answer translated back
into a ``response`` object or the Responses event stream (:mod:`~stellwerk.providers.responses.outbound`).

``store`` (default true, as OpenAI's) keeps the conversation (this request's input and the answer) for
``previous_response_id``, for 30 days (``STORE_TTL``), in the router's state store (in memory, bounded:
the least recently used go first), or in ``server.store`` when it is PostgreSQL (shared by replicas; one
round trip per stored response; while it is unreachable answers are not stored, and a warning logged).
``instructions`` are not carried over, as OpenAI documents.
An unknown or expired ``previous_response_id`` is a 400 naming it. Answers name the upstream model that
answered, as chat answers do.

Deployments with ``native_responses`` (openai, azure) get the request as the client sent it, and their answer
or event stream goes back as it came (:mod:`stellwerk.providers.responses.native`), with the upstream's
response id (under which the gateway stores the conversation too). Failover works across both kinds: a
native deployment that fails before its answer began is replaced by the next one, native or translated;
a native stream that breaks off after it began ends with ``error`` and ``response.failed`` (it is not
continued elsewhere). A request with ``previous_response_id`` always goes by translation: the
conversation is the gateway's. A request chat cannot express (built-in tools, files, ...) goes to the model's
native deployments only, with a stand-in chat body for routing (never cached); without one it is the 400
naming what cannot be translated.

With auth on, stored responses belong to who made them, as OpenAI's belong to a project: the caller's team
when its key has one, else the key itself. Another team's id is answered exactly as an unknown one, so a
caller learns nothing about conversations that are not theirs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from stellwerk.errors import InvalidRequestError, StellwerkError, StoreUnavailableError
from stellwerk.http.server import Request, Response, StreamingResponse
from stellwerk.pipeline import Principal, Stream, broke_off, is_result
from stellwerk.providers.responses import ResponseEvents, ResponsesRequest, to_chat_request, to_response
from stellwerk.providers.responses.native import NATIVE, NativeRelay, stand_in, stored_message
from stellwerk.providers.responses.outbound import skeleton
from stellwerk.routing import Router
from stellwerk.state.interfaces import KeyValue

from .door import FrontDoor
from .errors import answer_headers

__all__ = ["ResponsesAPI"]

log = logging.getLogger("stellwerk.responses")

STORE_TTL = 30 * 86400.0
"""Seconds a stored response can be continued with ``previous_response_id`` (OpenAI keeps them 30 days)."""


class ResponsesAPI(FrontDoor):
    """``POST /v1/responses``, reading requests with the gateway's readers (:class:`~.door.FrontDoor`)."""

    def __init__(self, router: Router, parse_json: Callable[[Request], Any],
                 timeout_of: Callable[[Request], float | None],
                 caller: Callable[[Request], Principal | None] = lambda request: None, ttl: float = STORE_TTL,
                 kept: KeyValue | None = None) -> None:
        """``kept``: where responses are stored (default: the router's state store)."""
        super().__init__(router, parse_json, timeout_of, caller)
        self._ttl = ttl
        self._kept: KeyValue = kept if kept is not None else router.state

    async def create(self, request: Request, rid: str) -> Response | StreamingResponse:
        principal = self._caller(request)  # 401 before the body is read
        body = self._parse_json(request)
        previous = body.get("previous_response_id") if isinstance(body, dict) else None
        owner = _owner(principal)
        earlier = await self._earlier(owner, previous) if isinstance(previous, str) else None
        try:
            parsed = to_chat_request(body, earlier)
            refused = None
        except InvalidRequestError as err:  # chat cannot express it: native deployments may still serve it
            if earlier is not None or _background(body) or not self._has_native(body):
                raise  # a background response would be fetched later from /v1/responses/{id}: not served
            parsed, refused = stand_in(body), (err.message, err.param)
        call = self.chat_call(request, rid, parsed.chat, principal)
        if earlier is None:  # native deployments may take it as it is
            call = call.evolve(responses=body, native_only=refused)
        reply = await self.router.handle(call)
        base = skeleton(f"resp_{rid}", int(time.time()), call.model, parsed.echo, parsed.store, previous)
        headers = answer_headers(reply, call)
        if is_result(reply) and reply.data.get("object") == "response":  # a native deployment's own
            await self._store(owner, parsed, earlier, stored_message(reply.data), str(reply.data.get("id")))
            return Response(200, reply.body, headers, head=reply.head)
        if is_result(reply):
            base["model"] = reply.data.get("model") or call.model  # the model that answered, as chat answers name it
            response, stored = to_response(reply.data, base)
            await self._store(owner, parsed, earlier, stored, base["id"])
            return Response(200, orjson.dumps(response), headers, head=reply.head)
        return StreamingResponse(self._events(reply, ResponseEvents(base), owner, parsed, earlier), headers=headers,
                                 head=reply.head)

    async def _events(self, stream: Stream, events: ResponseEvents, owner: str, parsed: ResponsesRequest,
                      earlier: list[dict[str, Any]] | None) -> AsyncIterator[bytes]:
        started = False
        native: NativeRelay | None = None
        try:
            async for chunk in stream:
                event = chunk.get(NATIVE)
                if not started:
                    started = True
                    if event is not None:  # a native deployment's own events, relayed
                        native = NativeRelay()
                    else:  # the response names the model that answers: the first chunk's
                        events.base["model"] = chunk.get("model") or events.base["model"]
                        yield events.start()
                if native is not None:
                    if event is not None:
                        yield native.relay(event)
                    continue
                data = events.feed(chunk)
                if data:
                    yield data
        except StellwerkError as err:
            message = broke_off(stream.deployment, err.message)
            if native is not None:
                yield native.error(message)
                return
            yield (b"" if started else events.start()) + events.error(message)
            return
        finally:
            await stream.aclose()
        if native is not None:
            if native.response is not None:
                await self._store(owner, parsed, earlier, stored_message(native.response), str(native.response["id"]))
            return
        if not started:
            yield events.start()
        closing, _, stored = events.finish()
        await self._store(owner, parsed, earlier, stored, events.base["id"])
        yield closing

    def _has_native(self, body: Any) -> bool:
        """The request names a model with a ``native_responses`` deployment."""
        name = body.get("model") if isinstance(body, dict) else None
        found = self.router.table.models.get(name) if isinstance(name, str) else None
        return found is not None and any(d.config.native_responses for d in found.group.deployments)

    @staticmethod
    def _key(owner: str, response_id: str) -> str:
        return f"responses:{len(owner)}:{owner}:{response_id}"  # the length: no team name can reach into an id

    async def _earlier(self, owner: str, response_id: str) -> list[dict[str, Any]]:
        """The conversation a stored response of ``owner`` ended (its input and its answer)."""
        stored = await self._kept.get(self._key(owner, response_id))
        if stored is None:
            raise InvalidRequestError(f"previous_response_id: no stored response '{response_id}' (unknown, expired, "
                                      "or created with store: false)", param="previous_response_id")
        messages: list[dict[str, Any]] = orjson.loads(stored)
        return messages

    async def _store(self, owner: str, parsed: ResponsesRequest, earlier: list[dict[str, Any]] | None,
                     answer: dict[str, Any], response_id: str) -> None:
        if not parsed.store:
            return
        conversation = [*(earlier or []), *parsed.input_messages, answer]
        try:
            await self._kept.put(self._key(owner, response_id), orjson.dumps(conversation), self._ttl)
        except StoreUnavailableError as err:  # the answer is served all the same; it cannot be continued
            log.warning("response %s not stored: %s", response_id, err.message)


def _background(body: Any) -> bool:
    return isinstance(body, dict) and bool(body.get("background"))


def _owner(principal: Principal | None) -> str:
    """Whose stored responses a caller may continue: its team's, else its key's; everyone's while auth is off."""
    if principal is None:
        return "-"
    return f"team={principal.team}" if principal.team else f"key={principal.key_id}"
