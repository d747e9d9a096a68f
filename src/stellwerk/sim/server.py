"""The simulated provider: an LLM upstream in one of five wire protocols, whose behaviour a :class:`Profile` scripts.

:class:`SimProvider` serves one protocol -- ``openai`` (default), ``anthropic``, ``gemini``, ``ollama`` or
``bedrock`` -- on the project's :class:`~stellwerk.http.server.HTTPServer` and carries out the decisions of
:class:`~stellwerk.sim.behaviour.Behaviour` (sleeps, errors, hangs, cut connections). The same profile
scripts every protocol; everything that touches the wire is the protocol's
:class:`~stellwerk.sim.protocol.Dialect` (see :data:`~stellwerk.sim.dialects.PROTOCOLS`).

Routes, per protocol (each dialect's ``routes`` table, matched by one :class:`~stellwerk.sim.protocol.RouteTable`)::

    openai     POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models[/{id}]   (/v1 optional)
    anthropic  POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models
    gemini     POST /v1beta/models/{model}:generateContent | :streamGenerateContent[?alt=sse]
                    | :embedContent | :batchEmbedContents | :countTokens,
               GET /v1beta/models[/{model}]                                            (/v1 too)
    ollama     POST /api/chat, POST /api/embed, GET /api/tags
    bedrock    POST /model/{modelId}/converse, POST /model/{modelId}/converse-stream
    every one  GET /_sim/stats, GET /_sim/profile, POST /_sim/profile (JSON object of fields to change),
               POST /_sim/reset                                                         (OpenAI-shaped errors)

How failures reach the client: errors are the protocol's error answers; *hang*
never answers (until the client disconnects or the sim closes); *drop* cuts a
stream after some chunks (no terminating event) or, for non-streamed requests,
closes the connection before any byte; *stream_error* sends some chunks and then
the protocol's in-stream error event (non-streamed: a status from
``error_statuses``); *malformed* answers 200 with cut-off JSON, or streams one
event that does not parse. Errors, malformed and dropped answers come after the
drawn TTFT; 429s and 4xx come at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from stellwerk.sim import openai_errors
from stellwerk.sim.behaviour import Behaviour, Decision, Outcome
from stellwerk.sim.content import LENGTHS_KEPT, embedding
from stellwerk.sim.dialects import dialect_for
from stellwerk.sim.profile import Profile, ProfileError
from stellwerk.sim.protocol import (
    BLOCKED,
    Embedder,
    ReplyPlanner,
    Route,
    RouteTable,
    StreamPlan,
    Turn,
    WireError,
    fragments,
)
from stellwerk.sim.stats import SimStats, StatsCounter

__all__ = ["SimProvider"]

# Enum members as module constants: ``Outcome.OK`` costs a metaclass lookup on every request.
_OK, _DROP, _MALFORMED, _STREAM_ERROR = Outcome.OK, Outcome.DROP, Outcome.MALFORMED, Outcome.STREAM_ERROR
_RATE_LIMIT, _CONTEXT_LENGTH, _CONTENT_POLICY = Outcome.RATE_LIMIT, Outcome.CONTEXT_LENGTH, Outcome.CONTENT_POLICY
_HANG, _REFUSE = Outcome.HANG, Outcome.REFUSE


class _Refuse(asyncio.CancelledError):
    """Raised by the handler to make the HTTP server close the connection without answering.

    ``HTTPServer`` treats a ``CancelledError`` from the handler like a client
    that went away: it closes the connection and writes nothing.
    """


class _StreamCut(ConnectionResetError):
    """Raised inside a stream to make the HTTP server close the connection without the final chunk."""


class SimProvider:
    """A simulated upstream speaking ``protocol``, with scriptable failures.

    >>> sim = SimProvider.from_preset("fast", protocol="anthropic")
    >>> await sim.start("127.0.0.1", 0)     # sim.base_url == "http://127.0.0.1:PORT" ("/v1" appended for openai)
    >>> sim.update(error_rate=1.0)          # live change
    >>> await sim.close()

    ``api_key`` is checked the protocol's way (OpenAI/Ollama ``Authorization: Bearer``, Anthropic
    ``x-api-key``, Gemini ``x-goog-api-key`` or ``?key=``, Bedrock the SigV4 access key id or a Bearer
    API key); None accepts any (Bedrock still requires a SigV4 ``Authorization`` header or a Bearer key).

    ``clock`` (monotonic seconds) drives outage windows and stream pacing,
    ``wall_clock`` the ``created`` timestamps, ``sleep`` all waiting; ``rng``
    replaces the RNG seeded from the profile (until :meth:`reset` or a change of ``seed``).
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        protocol: str = "openai",
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_body_size: int = 32 * 1024 * 1024,
    ) -> None:
        self._dialect = dialect_for(protocol)
        self._routes = RouteTable(self._dialect.routes)
        self._embedder = self._dialect if isinstance(self._dialect, Embedder) else None
        self._initial = profile or Profile()
        self._profile = self._initial
        self._api_key = api_key
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._behaviour = Behaviour(self._profile, clock=clock, rng=rng or random.Random(self._profile.seed))
        self._planner = ReplyPlanner(self._profile.seed)
        self._deltas: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self._counts = StatsCounter()
        self._seq = 0
        self._hung: set[asyncio.Task[Any]] = set()
        self._max_body_size = max_body_size
        self._server: HTTPServer | None = None
        self._host = "127.0.0.1"

    @classmethod
    def from_preset(cls, name: str, *, protocol: str = "openai", api_key: str | None = None) -> SimProvider:
        return cls(Profile.preset(name), protocol=protocol, api_key=api_key)

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (0 = an ephemeral port, see :attr:`port`)."""
        self._server = HTTPServer(self._handle, max_body_size=self._max_body_size)
        await self._server.start(host, port)
        self._host = host
        self._behaviour.restart(self._profile)  # outage windows count from here

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening; hung requests are cut at once, others get ``grace`` seconds."""
        if self._server is None:
            return
        for task in list(self._hung):
            task.cancel()
        await self._server.close(grace)
        self._server = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sim provider is not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        """Where a client of the protocol points: ``http://host:port/v1`` for OpenAI, ``http://host:port`` otherwise."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}{self._dialect.base_path}"

    @property
    def protocol(self) -> str:
        """The wire protocol served (fixed for the sim's life)."""
        return self._dialect.name

    # -- control ---------------------------------------------------------------------------------------------------
    @property
    def profile(self) -> Profile:
        return self._profile

    @property
    def stats(self) -> SimStats:
        return self._counts.snapshot()

    def update(self, changes: Mapping[str, Any] | None = None, /, **fields: Any) -> Profile:
        """Replace profile fields live (``sim.update(error_rate=1.0)``); raises ProfileError if invalid."""
        merged = {**(changes or {}), **fields}
        profile = self._profile.updated(merged)
        self._profile = profile
        self._behaviour.profile = profile
        if "seed" in merged:
            self._behaviour.restart(profile, self._behaviour_rng())
            self._planner, self._deltas = ReplyPlanner(profile.seed), {}
        return profile

    def reset(self) -> None:
        """Back to the initial profile, counters zeroed, RNG reseeded, outage windows counted from now."""
        self._profile = self._initial
        self._planner, self._deltas = ReplyPlanner(self._profile.seed), {}
        self._behaviour.restart(self._profile, self._behaviour_rng())
        self._counts = StatsCounter()

    def _behaviour_rng(self) -> random.Random:
        return random.Random(self._profile.seed)

    def _control(self, req: Request) -> Response:
        path, method = req.path, req.method
        if path == "/_sim/stats" and method == "GET":
            return Response(200, orjson.dumps(self.stats.to_dict()))
        if path == "/_sim/profile" and method == "GET":
            return Response(200, orjson.dumps(self._profile.to_dict()))
        if path == "/_sim/profile" and method == "POST":
            try:
                changes = orjson.loads(req.body or b"{}")
                if not isinstance(changes, dict):
                    raise ProfileError("profile: expected a JSON object of fields to change")
                profile = self.update(changes)
            except (orjson.JSONDecodeError, ProfileError) as exc:
                return Response(400, openai_errors.error_body(str(exc), "invalid_request_error"))
            return Response(200, orjson.dumps(profile.to_dict()))
        if path == "/_sim/reset" and method == "POST":
            self.reset()
            return Response(200, orjson.dumps(self.stats.to_dict()))
        return Response(404, openai_errors.invalid_url(method, path))

    # -- request handling ------------------------------------------------------------------------------------------
    async def handle(self, req: Request) -> Response | StreamingResponse:
        """Answer one request in process, without a socket (the policy simulator's transport does).

        Where the server would close the connection without an answer, this raises
        :class:`ConnectionRefusedError`; a stream it would cut raises :class:`ConnectionResetError`.
        """
        try:
            return await self._handle(req)
        except _Refuse:
            raise ConnectionRefusedError("simulated: connection closed without an answer") from None

    async def _handle(self, req: Request) -> Response | StreamingResponse:
        path = req.path
        if path.startswith("/_sim/"):
            return self._control(req)
        self._counts.requests += 1
        dialect = self._dialect
        denied = dialect.authorize(req, self._api_key)
        if denied is not None:
            return self._invalid(denied)
        route = self._routes.match(req.method, path, req.query)
        if route is None:
            return self._invalid(dialect.errors.not_found(req.method, path))
        endpoint = route.endpoint
        if endpoint == "chat":
            return await self._chat(req, route)
        if endpoint == "embed" and self._embedder is not None:
            return await self._embeddings(self._embedder, req, route)
        profile = self._profile
        down = self._behaviour.outage() if profile.outages else None
        if down is not None:  # a provider in an outage answers nothing, model lists included
            return await self._fail(down, "", 0)
        response = dialect.info(req, route, profile.models, profile.accept_any_model, self._wall_clock())
        if response.status >= 400:
            self._counts.invalid += 1
        return response

    def _invalid(self, response: Response) -> Response:
        self._counts.invalid += 1
        return response

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    async def _chat(self, req: Request, route: Route) -> Response | StreamingResponse:
        profile = self._profile
        dialect = self._dialect
        try:
            chat = dialect.parse_chat(req, route, profile.content_policy_trigger)
        except WireError as exc:
            return self._invalid(exc.response())
        if not profile.accept_any_model and chat.model not in profile.models:
            return self._invalid(dialect.errors.model_not_found(chat.model))
        decision = self._behaviour.decide(chat.prompt_tokens, chat.flagged)
        outcome = decision.outcome
        self._counts.outcome(outcome)
        if chat.stream:
            self._counts.streams += 1
        if outcome is _OK or outcome in _ANSWERED or (outcome is _STREAM_ERROR and chat.stream):
            reply = self._planner.plan(chat, profile.output_tokens)
        elif outcome is _CONTENT_POLICY:
            blocked = dialect.errors.content_blocked()
            if blocked is not None:
                return blocked
            reply = BLOCKED
        else:
            return await self._fail(decision, chat.model, chat.prompt_tokens)

        seq = self._next_id()
        k = profile.words_per_chunk
        duration = decision.ttft + reply.completion_tokens * decision.token_interval
        turn = Turn(seq, self._wall_clock(), chat, route, reply, decision.ttft, duration, 4 * k)
        headers = dialect.headers(seq)
        if chat.stream:
            if decision.ttft > 0:
                await self._sleep(decision.ttft)
            text: Sequence[bytes] = ()
            if reply.words:
                text = self._text_deltas(reply.words, k)
            elif reply.text is not None:
                text = [dialect.text_delta(f) for f in fragments(reply.text, 4 * k)]
            plan = dialect.stream(turn, text)
            stream = self._paced(plan, decision, reply.completion_tokens)
            return StreamingResponse(stream, headers=headers, content_type=plan.content_type)
        if duration > 0:  # the whole answer at once, when its last token is due (one wait, not two)
            await self._sleep(duration)
        if outcome is _DROP:
            raise _Refuse
        body = dialect.completion(turn)
        if outcome is _MALFORMED:
            body = body[: len(body) // 2]
        return Response(200, body, headers)

    def _text_deltas(self, n: int, per_chunk: int) -> tuple[bytes, ...]:
        key = (n, per_chunk)
        deltas = self._deltas.get(key)
        if deltas is None:
            if len(self._deltas) > LENGTHS_KEPT:
                self._deltas.clear()
            encode = self._dialect.text_delta
            deltas = self._deltas[key] = tuple(map(encode, self._planner.words.pieces(n, per_chunk)))
        return deltas

    async def _paced(self, plan: StreamPlan, decision: Decision, tokens: int) -> AsyncIterator[bytes]:
        """Send the events; delta ``i`` goes out ``i * token_interval * words_per_chunk`` after the first event,
        and the last one of a whole answer when its last token is due (``tokens - 1`` intervals after the first),
        so a stream in chunks of several words ends when one word at a time would. Events due at the same time
        go out in one chunk.

        DROP sends a share (``cut_fraction``) of the deltas, then cuts the connection; STREAM_ERROR sends that
        share and the protocol's error event; MALFORMED sends that share, one event that does not parse, and
        the closing events.
        """
        writer, first, deltas, closing, _ = plan
        outcome = decision.outcome
        if outcome is not _OK and outcome is not _CONTENT_POLICY:  # DROP, STREAM_ERROR, MALFORMED
            deltas = deltas[: int(len(deltas) * decision.cut_fraction)]
            if outcome is _MALFORMED:
                closing = [writer.broken(), *closing]
            elif outcome is _STREAM_ERROR:
                closing = [writer.error(decision.status)]
            else:
                closing = []
        interval = decision.token_interval * self._profile.words_per_chunk
        if interval <= 0:
            yield first + writer.events(deltas) + b"".join(closing)
        else:
            start = self._clock()
            last = len(deltas) - 1 if outcome is _OK or outcome is _CONTENT_POLICY else -1
            due_now = first  # the first delta goes out with the first event, the closing events with the last delta
            for i, delta in enumerate(deltas):
                due = i * interval
                if i == last:
                    due = max(due, (tokens - 1) * decision.token_interval)
                delay = start + due - self._clock()
                if delay > 0:
                    if due_now:
                        yield due_now
                    await self._sleep(delay)
                    due_now = writer.event(delta)
                else:
                    due_now += writer.event(delta)
            due_now += b"".join(closing)
            if due_now:
                yield due_now
        if outcome is _DROP:
            raise _StreamCut("simulated connection drop mid-stream")

    async def _fail(self, decision: Decision, model: str, prompt_tokens: int) -> Response:
        outcome = decision.outcome
        errors = self._dialect.errors
        if outcome is _RATE_LIMIT:
            return errors.rate_limited(model, decision.retry_after)
        if outcome is _CONTEXT_LENGTH:
            return errors.context_too_long(self._profile.context_window, prompt_tokens)
        if outcome is _HANG:
            await self._hang()
        if outcome is _REFUSE:
            raise _Refuse
        if decision.ttft > 0:
            await self._sleep(decision.ttft)
        return errors.server_error(decision.status)

    async def _hang(self) -> None:
        """Wait until the client disconnects or the sim closes (both cancel this task)."""
        task = asyncio.current_task()
        assert task is not None
        self._hung.add(task)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._hung.discard(task)

    async def _embeddings(self, embedder: Embedder, req: Request, route: Route) -> Response | StreamingResponse:
        profile = self._profile
        dialect = self._dialect
        try:
            emb = embedder.parse_embed(req, route)
        except WireError as exc:
            return self._invalid(exc.response())
        if not profile.accept_any_model and emb.model not in profile.models:
            return self._invalid(dialect.errors.model_not_found(emb.model))
        decision = self._behaviour.decide(emb.prompt_tokens, False)
        self._counts.outcome(decision.outcome)
        if decision.outcome is not _OK and decision.outcome not in _ANSWERED:
            return await self._fail(decision, emb.model, emb.prompt_tokens)
        if decision.ttft > 0:
            await self._sleep(decision.ttft)
        if decision.outcome is _DROP:
            raise _Refuse
        dims = emb.dimensions or profile.embedding_dimensions
        vectors = [embedding(i if isinstance(i, str) else repr(i), dims) for i in emb.inputs]
        body = embedder.embeddings(emb, route, vectors, decision.ttft)
        if decision.outcome is _MALFORMED:
            body = body[: len(body) // 2]
        return Response(200, body, dialect.headers(self._next_id()))


_ANSWERED: Final = frozenset((_DROP, _MALFORMED))
"""Outcomes that start an answer (then break it); STREAM_ERROR too, for streams."""
