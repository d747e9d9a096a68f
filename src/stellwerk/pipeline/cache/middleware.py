"""The pipeline's ``cache`` stage: answer a repeated chat request from the cache, store complete answers.

    call ─► model's cache mode off? ─► next                                  (no header, nothing added)
         ─► controls: no-store, or the backend is down ─► next                   x-stellwerk-cache: bypass
         ─► exact key ─► backend.get ──hit──► Result / ReplayStream           hit (cost 0)
                       └─ semantic: embed last user message ─► nearest in (context, guard signature)
                                                      ─► guard ──► hit        semantic-hit + score
         ─► next ─► complete success? ─► backend.put (before answering; a stream: once it completed)   miss
         backend unreachable (CacheUnavailable) ─► next                      bypass

Only complete successes are stored: an error never reaches this stage as an answer, a stream that
was cut, abandoned or resumed is not stored, and neither is an answer with a choice that did not
finish or finished by ``content_filter``. A hit costs nothing: ``x-stellwerk-cost: 0``, and its
completion record (:class:`~stellwerk.telemetry.RequestFinished`) says ``cache`` and ``saved``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import orjson

from stellwerk.config import CacheOptions
from stellwerk.state import Cache, CacheUnavailable, CacheUsage

from ..call import Call, Operation
from ..chain import Handler
from ..reply import ChatResult, Headers, ReplayStream, Reply, Stream, is_result
from .entry import Collector, Entry, decode, encode, replay_chunks, storable
from .guard import guard, signature, signature_key
from .keys import context_key, exact_key, last_user_text, read_controls, scope_id

__all__ = ["DEFAULT_THRESHOLD", "MAX_STREAM_BYTES", "CacheTally", "ResponseCache"]

log = logging.getLogger("stellwerk.cache")

DEFAULT_THRESHOLD = 0.90
"""Cosine similarity a semantic hit needs when the model names no ``threshold`` (bench/RESULTS.md)."""
MAX_STREAM_BYTES = 4 << 20
"""A streamed answer larger than this is not collected (nor stored)."""

BYPASS: Headers = (("x-stellwerk-cache", "bypass"),)
MISS: Headers = (("x-stellwerk-cache", "miss"),)


class CacheTally(msgspec.Struct):
    """One model's cache outcomes in this process."""

    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    bypasses: int = 0
    guard_refusals: int = 0
    """Semantic candidates above the threshold that the guard refused (counted as misses too)."""
    saved_cost: float = 0.0
    """US dollars the hits saved."""


class _Probe(msgspec.Struct):
    """A semantic lookup's query: the prompt, its vector, and the scope of its candidates."""

    prompt: str
    vector: Any
    scope: str


class ResponseCache:
    """``ResponseCache(backend, clock=..., embed=...)`` is the ``cache`` middleware.

    ``embed`` (semantic mode only) turns one text into a vector; it is called on the event loop, so it
    must be fast (the built-in static embedder takes tens of microseconds).
    """

    def __init__(self, backend: Cache, *, clock: Callable[[], float],
                 embed: Callable[[str], Sequence[float]] | None = None) -> None:
        self.backend = backend
        self.tallies: dict[str, CacheTally] = {}
        self._clock = clock
        self._embed = embed
        self._pending: set[asyncio.Task[None]] = set()

    def tally(self, model: str) -> CacheTally:
        tally = self.tallies.get(model)
        if tally is None:
            tally = self.tallies[model] = CacheTally()
        return tally

    async def __call__(self, call: Call, next_handler: Handler) -> Reply:
        if call.operation is not Operation.CHAT or call.native_only is not None:  # the body is a stand-in
            return await next_handler(call)
        options: CacheOptions = call.table.models[call.model].config.cache
        if options.mode == "off":
            return await next_handler(call)
        controls = read_controls(call.headers)
        tally = self.tally(call.model)
        if not controls.write or not self.backend.available:
            tally.bypasses += 1
            return _marked(await next_handler(call), BYPASS)
        scope = scope_id(options.scope, call.principal)
        key = exact_key(call.body, scope)
        probe = self._probe(call, scope) if options.mode == "semantic" else None
        if controls.read:
            try:
                found = await self._lookup(key, probe, options, tally)
            except CacheUnavailable:
                tally.bypasses += 1
                return _marked(await next_handler(call), BYPASS)
            if found is not None:
                return self._hit(call, *found, tally)
        tally.misses += 1
        reply = await next_handler(call)
        ttl = controls.ttl or options.ttl
        if is_result(reply):
            if reply.deployment != "cache" and storable(reply.data):  # stored before it is answered: no task
                raw = reply.raw if reply.raw is not None else orjson.dumps(reply.data)
                await self._write(call.model, key, encode(raw, reply.usage, reply.cost, reply.deployment,
                                                          probe.prompt if probe is not None else ""), ttl, probe)
        else:
            self._store_stream(call, reply, key, ttl, probe)
        return _marked(reply, MISS)

    # -- reading ----------------------------------------------------------------
    def _probe(self, call: Call, scope: str) -> _Probe | None:
        text = last_user_text(call.body)
        if text is None or not text.strip() or self._embed is None:
            return None
        sig = signature(text)
        return _Probe(text, self._embed(text), f"{context_key(call.body, scope)}:{signature_key(sig)}")

    async def _lookup(self, key: str, probe: _Probe | None, options: CacheOptions,
                      tally: CacheTally) -> tuple[Entry, str, float] | None:
        value = await self.backend.get(key)
        if value is not None:
            entry = decode(value)
            if entry is not None:
                return entry, "hit", 1.0
        if probe is None:
            return None
        threshold = options.threshold if options.threshold is not None else DEFAULT_THRESHOLD
        near = await self.backend.nearest(probe.vector, scope=probe.scope, threshold=threshold)
        if near is None:
            return None
        entry = decode(near.value)
        if entry is None:
            return None
        if not guard(probe.prompt, entry.prompt):  # the index is partitioned by signature: a safety net
            tally.guard_refusals += 1
            return None
        return entry, "semantic-hit", near.score

    def _hit(self, call: Call, entry: Entry, kind: str, score: float, tally: CacheTally) -> Reply:
        if kind == "hit":
            tally.hits += 1
        else:
            tally.semantic_hits += 1
        tally.saved_cost += entry.cost
        headers: Headers = (("x-stellwerk-cache", kind), ("x-stellwerk-cost", "0"))
        if kind == "semantic-hit":
            headers += (("x-stellwerk-cache-score", f"{score:.4f}"),)
        route = f"{kind} (first answered by {entry.deployment})"
        if call.stream:
            return ReplayStream(replay_chunks(entry.answer, call.include_usage), model=call.model, deployment="cache",
                                request_id=call.request_id, usage=entry.usage, started=call.started,
                                clock=self._clock, route=route, headers=headers, cache=kind, saved=entry.cost)
        record = call.finished(self._clock(), status=200, deployment="cache", attempts=(), usage=entry.usage, cost=0.0,
                               cache=kind, saved=entry.cost)
        return ChatResult(entry.answer, entry.raw, call.model, "cache", 0, entry.usage, 0.0, record.latency,
                          call.request_id, route, record, headers)

    # -- writing ----------------------------------------------------------------
    def _store_stream(self, call: Call, reply: Stream, key: str, ttl: float, probe: _Probe | None) -> None:
        """Collect the stream as it passes; store its answer once it completed (a task: the hook is synchronous)."""
        prompt = probe.prompt if probe is not None else ""
        tap = getattr(reply, "tap", None)
        if tap is None:
            return  # a middleware's own stream: nothing to store
        collector = Collector(MAX_STREAM_BYTES)
        tap(collector)

        def completed(record: Any) -> None:
            if record.status != 200 or getattr(reply, "resumed", 0) or collector.overflow:
                return  # cut, abandoned or continued elsewhere: never stored
            answer = collector.answer(record.usage)
            if answer is not None and storable(answer):
                value = encode(orjson.dumps(answer), record.usage, record.cost, record.deployment or "", prompt)
                self._put(call.model, key, value, ttl, probe)

        reply.on_complete(completed)

    def _put(self, model: str, key: str, value: bytes, ttl: float, probe: _Probe | None) -> None:
        task = asyncio.get_running_loop().create_task(self._write(model, key, value, ttl, probe))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, model: str, key: str, value: bytes, ttl: float, probe: _Probe | None) -> None:
        try:
            await self.backend.put(key, value, ttl, model=model, scope=probe.scope if probe is not None else "",
                                   vector=probe.vector if probe is not None else None)
        except CacheUnavailable:
            log.debug("cache unavailable: answer of %s not stored", model)
        except Exception:
            log.exception("storing an answer of %s in the cache failed", model)

    async def settle(self) -> None:
        """Wait for the stores in flight (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # -- admin --------------------------------------------------------------------
    async def snapshot(self) -> dict[str, Any]:
        """``GET /admin/cache``: entries and bytes (the backend's) and outcomes (this process's) per model."""
        try:
            usage: dict[str, CacheUsage] | None = await self.backend.usage()
        except CacheUnavailable:
            usage = None
        models: dict[str, Any] = {}
        for model in sorted(set(self.tallies) | set(usage or {})):
            tally = self.tallies.get(model, CacheTally())
            held = (usage or {}).get(model, CacheUsage())
            models[model] = {"entries": held.entries, "bytes": held.bytes, **msgspec.to_builtins(tally),
                             "saved_cost": round(tally.saved_cost, 8)}
        return {"available": usage is not None, "models": models,
                "entries": sum(m["entries"] for m in models.values()), "bytes": sum(m["bytes"] for m in models.values()),
                "hits": sum(t.hits for t in self.tallies.values()),
                "semantic_hits": sum(t.semantic_hits for t in self.tallies.values()),
                "misses": sum(t.misses for t in self.tallies.values()),
                "saved_cost": round(sum(t.saved_cost for t in self.tallies.values()), 8)}

    def counts(self) -> dict[tuple[str, str], int]:
        """Look-ups by ``(model, result)`` (``hit``, ``semantic-hit``, ``miss``, ``bypass``), for metrics."""
        return {(model, result): count for model, tally in self.tallies.items()
                for result, count in (("hit", tally.hits), ("semantic-hit", tally.semantic_hits),
                                      ("miss", tally.misses), ("bypass", tally.bypasses))}

    async def flush(self, model: str | None = None) -> int:
        """``DELETE /admin/cache[?model=M]``: forget every entry (of one model); returns how many."""
        return await self.backend.flush(model)


def _marked(reply: Reply, headers: Headers) -> Reply:
    reply.headers = (*reply.headers, *headers)
    return reply
