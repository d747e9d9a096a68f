"""The simulated provider: an OpenAI-compatible upstream whose behaviour a :class:`Profile` scripts.

:class:`SimProvider` serves :mod:`stellwerk.sim.openai_wire` (and :mod:`~stellwerk.sim.openai_errors`) on the project's
:class:`~stellwerk.http.server.HTTPServer` and carries out the decisions of
:class:`~stellwerk.sim.behaviour.Behaviour` (sleeps, errors, hangs, cut connections).

Routes (``/v1`` prefix optional)::

    POST /v1/chat/completions     GET /v1/models          GET  /_sim/stats
    POST /v1/embeddings           GET /v1/models/{id}     GET  /_sim/profile
                                                          POST /_sim/profile   (JSON object of fields to change)
                                                          POST /_sim/reset

How failures reach the client: errors are OpenAI-shaped bodies; *hang* never
answers (until the client disconnects or the sim closes); *drop* cuts a stream
after some chunks (no terminating chunk) or, for non-streamed requests, closes
the connection before any byte; *malformed* answers 200 with cut-off JSON, or
streams one cut-off SSE event. Errors, malformed and dropped answers come after
the drawn TTFT; 429s and 4xx come at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import orjson

from stellwerk.http.server import HTTPServer, Request, Response, StreamingResponse
from stellwerk.sim import openai_errors as errors
from stellwerk.sim import openai_wire as wire
from stellwerk.sim.behaviour import Behaviour, Decision, Outcome
from stellwerk.sim.content import ReplyCache, embedding, estimate_tokens, schema_example
from stellwerk.sim.profile import Profile, ProfileError
from stellwerk.sim.stats import SimStats, StatsCounter

__all__ = ["SimProvider"]

_RATE_LIMIT_RPM: Final = 500


class _Refuse(asyncio.CancelledError):
    """Raised by the handler to make the HTTP server close the connection without answering.

    ``HTTPServer`` treats a ``CancelledError`` from the handler like a client
    that went away: it closes the connection and writes nothing.
    """


class _StreamCut(ConnectionResetError):
    """Raised inside a stream to make the HTTP server close the connection without the final chunk."""


class SimProvider:
    """An OpenAI-compatible upstream with scriptable failures.

    >>> sim = SimProvider.from_preset("fast")
    >>> await sim.start("127.0.0.1", 0)     # sim.base_url == "http://127.0.0.1:PORT/v1"
    >>> sim.update(error_rate=1.0)          # live change
    >>> await sim.close()

    ``clock`` (monotonic seconds) drives outage windows and stream pacing,
    ``wall_clock`` the ``created`` timestamps, ``sleep`` all waiting; ``rng``
    replaces the RNG seeded from the profile (until :meth:`reset` or a change of ``seed``).
    """

    def __init__(
        self,
        profile: Profile | None = None,
        *,
        api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        max_body_size: int = 32 * 1024 * 1024,
    ) -> None:
        self._initial = profile or Profile()
        self._profile = self._initial
        self._api_key = api_key
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._behaviour = Behaviour(self._profile, clock=clock, rng=rng or random.Random(self._profile.seed))
        self._replies = ReplyCache(self._profile.seed)
        self._deltas: dict[tuple[int, int], tuple[bytes, ...]] = {}
        self._counts = StatsCounter()
        self._seq = 0
        self._hung: set[asyncio.Task[Any]] = set()
        self._max_body_size = max_body_size
        self._server: HTTPServer | None = None
        self._host = "127.0.0.1"

    @classmethod
    def from_preset(cls, name: str, *, api_key: str | None = None) -> SimProvider:
        return cls(Profile.preset(name), api_key=api_key)

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
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

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
            self._replies, self._deltas = ReplyCache(profile.seed), {}
        return profile

    def reset(self) -> None:
        """Back to the initial profile, counters zeroed, RNG reseeded, outage windows counted from now."""
        self._profile = self._initial
        self._replies, self._deltas = ReplyCache(self._profile.seed), {}
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
                return Response(400, errors.error_body(str(exc), "invalid_request_error"))
            return Response(200, orjson.dumps(profile.to_dict()))
        if path == "/_sim/reset" and method == "POST":
            self.reset()
            return Response(200, orjson.dumps(self.stats.to_dict()))
        return Response(404, errors.invalid_url(method, path))

    # -- request handling ------------------------------------------------------------------------------------------
    async def _handle(self, req: Request) -> Response | StreamingResponse:
        path = req.path
        if path.startswith("/_sim/"):
            return self._control(req)
        if path.startswith("/v1/"):
            path = path[3:]
        self._counts.requests += 1
        if self._api_key is not None:
            auth = req.headers.get("authorization", "")
            supplied = auth[7:] if auth[:7].lower() == "bearer " else None
            if supplied != self._api_key:
                return self._invalid(401, errors.invalid_api_key(supplied))
        method = req.method
        if path == "/chat/completions" and method == "POST":
            return await self._chat(req)
        if path == "/embeddings" and method == "POST":
            return await self._embeddings(req)
        if path == "/models" and method == "GET":
            return Response(200, wire.model_list(self._profile.models, int(self._wall_clock())))
        if path.startswith("/models/") and method == "GET":
            model = path[len("/models/") :]
            if model in self._profile.models or self._profile.accept_any_model:
                return Response(200, orjson.dumps(wire.model_object(model, int(self._wall_clock()))))
            return self._invalid(404, errors.model_not_found(model))
        return self._invalid(404, errors.invalid_url(method, req.path))

    def _invalid(self, status: int, body: bytes) -> Response:
        self._counts.invalid += 1
        return Response(status, body)

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    async def _chat(self, req: Request) -> Response | StreamingResponse:
        profile = self._profile
        try:
            chat = wire.parse_chat(req.body, profile.content_policy_trigger)
        except errors.WireError as exc:
            return self._invalid(exc.status, exc.body())
        if not profile.accept_any_model and chat.model not in profile.models:
            return self._invalid(404, errors.model_not_found(chat.model))
        decision = self._behaviour.decide(chat.prompt_tokens, chat.flagged)
        self._counts.outcome(decision.outcome)
        if chat.stream:
            self._counts.streams += 1
        if decision.outcome not in (Outcome.OK, Outcome.DROP, Outcome.MALFORMED):
            return await self._fail(decision, chat.model, chat.prompt_tokens)

        seq = self._next_id()
        completion_id = f"chatcmpl-sim{seq:020d}"
        headers = [("x-request-id", f"req_sim{seq:024d}")]
        created = int(self._wall_clock())
        finish = "stop"
        tool: tuple[str, str, str] | None = None
        if chat.tool_name is not None:
            arguments = orjson.dumps(schema_example(chat.tool_parameters)).decode()
            tool = (wire.tool_call_id(seq), chat.tool_name, arguments)
            content, finish, completion_tokens = None, "tool_calls", estimate_tokens(len(arguments))
        elif chat.response_format == "json_schema":
            content = orjson.dumps(schema_example(chat.json_schema)).decode()
            completion_tokens = estimate_tokens(len(content))
        else:
            n = profile.output_tokens
            if chat.max_tokens is not None and chat.max_tokens < n:
                n, finish = chat.max_tokens, "length"
            words = self._replies.words(n)
            content = " ".join(words)
            if chat.response_format == "json_object":
                content = orjson.dumps({"reply": content}).decode()
            completion_tokens = n

        if decision.ttft > 0:
            await self._sleep(decision.ttft)
        if chat.stream:
            writer = wire.ChunkWriter(completion_id, created, chat.model, chat.include_usage)
            first, deltas, closing = self._stream_parts(writer, chat, content, tool, finish, completion_tokens)
            stream = self._paced(writer, first, deltas, closing, decision)
            return StreamingResponse(stream, headers=headers)
        if decision.token_interval > 0:
            await self._sleep(completion_tokens * decision.token_interval)
        if decision.outcome is Outcome.DROP:
            raise _Refuse
        body = wire.chat_completion(
            completion_id, created, chat.model, content, finish, chat.prompt_tokens, completion_tokens, tool
        )
        if decision.outcome is Outcome.MALFORMED:
            body = body[: len(body) // 2]
        return Response(200, body, headers)

    def _stream_parts(
        self,
        writer: wire.ChunkWriter,
        chat: wire.ChatRequest,
        content: str | None,
        tool: tuple[str, str, str] | None,
        finish: str,
        completion_tokens: int,
    ) -> tuple[bytes, Sequence[bytes], list[bytes]]:
        """The first event, the paced deltas (not yet framed), and the closing events (finish, usage, [DONE])."""
        k = self._profile.words_per_chunk
        deltas: Sequence[bytes]
        if tool is not None:
            first = writer.tool_start(tool[0], tool[1])
            deltas = [wire.tool_arguments_delta(f) for f in _fragments(tool[2], 4 * k)]
        elif chat.response_format == "text":
            first = writer.role()
            deltas = self._text_deltas(completion_tokens, k)
        else:
            first = writer.role()
            deltas = [wire.content_delta(f) for f in _fragments(content or "", 4 * k)]
        closing = [writer.finish(finish)]
        if chat.include_usage:
            closing.append(writer.usage(chat.prompt_tokens, completion_tokens))
        closing.append(wire.DONE)
        return first, deltas, closing

    def _text_deltas(self, n: int, per_chunk: int) -> tuple[bytes, ...]:
        key = (n, per_chunk)
        deltas = self._deltas.get(key)
        if deltas is None:
            if len(self._deltas) > 256:
                self._deltas.clear()
            deltas = self._deltas[key] = tuple(map(wire.content_delta, self._replies.pieces(n, per_chunk)))
        return deltas

    async def _paced(
        self, writer: wire.ChunkWriter, first: bytes, deltas: Sequence[bytes], closing: list[bytes], decision: Decision
    ) -> AsyncIterator[bytes]:
        """Send the events; delta ``i`` goes out ``i * token_interval * words_per_chunk`` after the first event.

        DROP sends a share (``cut_fraction``) of the deltas, then cuts the connection; MALFORMED sends that
        share, one event of cut-off JSON, and the closing events.
        """
        outcome = decision.outcome
        if outcome is not Outcome.OK:
            deltas = deltas[: int(len(deltas) * decision.cut_fraction)]
            closing = [writer.broken(), *closing] if outcome is Outcome.MALFORMED else []
        interval = decision.token_interval * self._profile.words_per_chunk
        if interval <= 0:
            yield first + writer.events(deltas) + b"".join(closing)
        else:
            yield first
            start = self._clock()
            for i, delta in enumerate(deltas):
                delay = start + i * interval - self._clock()
                if delay > 0:
                    await self._sleep(delay)
                yield writer.event(delta)
            if closing:
                yield b"".join(closing)
        if outcome is Outcome.DROP:
            raise _StreamCut("simulated connection drop mid-stream")

    async def _fail(self, decision: Decision, model: str, prompt_tokens: int) -> Response:
        outcome = decision.outcome
        if outcome is Outcome.RATE_LIMIT:
            body, headers = errors.rate_limit_error(model, decision.retry_after, _RATE_LIMIT_RPM)
            return Response(429, body, headers)
        if outcome is Outcome.CONTEXT_LENGTH:
            return Response(400, errors.context_length_error(self._profile.context_window, prompt_tokens))
        if outcome is Outcome.CONTENT_POLICY:
            return Response(400, errors.content_policy_error())
        if outcome is Outcome.HANG:
            await self._hang()
        if outcome is Outcome.REFUSE:
            raise _Refuse
        if decision.ttft > 0:
            await self._sleep(decision.ttft)
        return Response(decision.status, errors.server_error(decision.status))

    async def _hang(self) -> None:
        """Wait until the client disconnects or the sim closes (both cancel this task)."""
        task = asyncio.current_task()
        assert task is not None
        self._hung.add(task)
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            self._hung.discard(task)

    async def _embeddings(self, req: Request) -> Response | StreamingResponse:
        profile = self._profile
        try:
            emb = wire.parse_embeddings(req.body)
        except errors.WireError as exc:
            return self._invalid(exc.status, exc.body())
        if not profile.accept_any_model and emb.model not in profile.models:
            return self._invalid(404, errors.model_not_found(emb.model))
        decision = self._behaviour.decide(emb.prompt_tokens, False)
        self._counts.outcome(decision.outcome)
        if decision.outcome not in (Outcome.OK, Outcome.DROP, Outcome.MALFORMED):
            return await self._fail(decision, emb.model, emb.prompt_tokens)
        if decision.ttft > 0:
            await self._sleep(decision.ttft)
        if decision.outcome is Outcome.DROP:
            raise _Refuse
        dims = emb.dimensions or profile.embedding_dimensions
        vectors = [embedding(i if isinstance(i, str) else repr(i), dims) for i in emb.inputs]
        body = wire.embeddings_response(emb.model, vectors, emb.base64, emb.prompt_tokens)
        if decision.outcome is Outcome.MALFORMED:
            body = body[: len(body) // 2]
        return Response(200, body, [("x-request-id", f"req_sim{self._next_id():024d}")])


def _fragments(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]
