"""``reply.on_complete(hook)``: fires exactly once with the right ``RequestFinished``, however the reply ends.

A complete answer (at once, also for hooks added late), a stream read to the end (200), a stream the consumer
abandons (499), a stream the upstream cuts with resuming off (502, no deployment, an error event). In each case the
router's listeners get exactly one ``RequestFinished`` too, and a hook that raises is logged, never raised.
Everything runs in virtual time over the scripted fake transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from resilience_support import FakeTransport, chunk, cut, fake_model, hang, status, stream, stream_chunks

from stellwerk import AllAttemptsFailedError, Event, Outcome, RequestFinished, Router
from stellwerk.pipeline import ReplayStream
from stellwerk.usage import Usage
from support import GUARD

USER = [{"role": "user", "content": "Hello there"}]
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
MakeRouter = Callable[..., Router]


class Hooked(list[RequestFinished]):
    """A completion hook (and a listener) that keeps every ``RequestFinished`` it is given."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, RequestFinished):
            self.append(event)


async def settle() -> None:
    """A few loop iterations: an async generator closed or dropped while it holds another closes that one in a
    later iteration (through the loop's finalizer)."""
    for _ in range(8):
        await asyncio.sleep(0)


def priced(*ids: str, **fields: Any) -> dict[str, Any]:
    deps = [{"id": d, "provider": "openai", "model": f"up-{d}", "api_base": f"http://{d}.fake/v1", "price": PRICE}
            for d in ids]
    return fake_model("chat", *deps, **fields)


async def test_a_complete_answer_completes_at_once_also_for_late_hooks(fake_router: MakeRouter) -> None:
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    result = await router.chat(model="chat", messages=USER)
    first, late = Hooked(), Hooked()
    result.on_complete(first)
    result.on_complete(late)
    [record] = first
    assert late == first and events == first
    assert (record.status, record.deployment, record.stream, record.model) == (200, "a", False, "chat")
    assert record.usage == result.usage and (record.usage.prompt_tokens, record.usage.completion_tokens) == (5, 1)
    assert record.cost == result.cost == pytest.approx((5 * 1.0 + 1 * 2.0) / 1e6)


async def test_a_stream_read_to_the_end_completes_once_with_200(fake_router: MakeRouter,
                                                                transport: FakeTransport) -> None:
    transport.script("a", stream(stream_chunks(["one", " two", " three"])))
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    hooked = Hooked()
    reply.on_complete(hooked)
    assert hooked == [] and events == []  # not before the end
    text = "".join([c["choices"][0]["delta"].get("content") or "" async for c in reply])
    assert text == "one two three"
    [record] = hooked
    assert (record.status, record.deployment, record.stream) == (200, "a", True)
    assert record.usage == reply.usage and record.cost == reply.cost > 0
    await reply.aclose()  # after the end: nothing more happens
    late = Hooked()
    reply.on_complete(late)
    assert late == hooked == events


@pytest.mark.parametrize("read_first", [False, True], ids=["unread", "after-one-chunk"])
async def test_an_abandoned_stream_completes_once_with_499(fake_router: MakeRouter, transport: FakeTransport,
                                                           read_first: bool) -> None:
    transport.script("a", stream(stream_chunks(["never", " read", " entirely"])))
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    hooked = Hooked()
    reply.on_complete(hooked)
    if read_first:
        chunks = reply.__aiter__()
        await chunks.__anext__()
        await chunks.aclose()  # the consumer stops reading (as the gateway does when the client goes away)
    await reply.aclose()
    await reply.aclose()
    [record] = hooked
    assert (record.status, record.deployment) == (499, "a")
    assert events == hooked
    assert router.table.deployments["a"].in_flight == 0
    assert transport.to("a")[0].response is not None and transport.to("a")[0].response.closed


@pytest.mark.parametrize("consumer", ["sse", "chunks"])
async def test_a_consumer_that_stops_after_one_step_ends_the_stream_with_499(fake_router: MakeRouter,
                                                                             transport: FakeTransport,
                                                                             consumer: str) -> None:
    transport.script("a", stream(stream_chunks(["one", " two", " three"])))
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    parts: Any = reply.sse() if consumer == "sse" else aiter(reply)
    assert await anext(parts)
    assert events == []
    await parts.aclose()
    await settle()
    assert [(r.status, r.deployment) for r in events] == [(499, "a")]
    assert transport.to("a")[0].response is not None and transport.to("a")[0].response.closed
    assert [part async for part in parts] == []  # ended for good
    await parts.aclose()
    assert len(events) == 1


@pytest.mark.parametrize("consumer", ["sse", "chunks"])
async def test_a_consumer_closed_before_its_first_step_leaves_the_stream_open(fake_router: MakeRouter,
                                                                              transport: FakeTransport,
                                                                              consumer: str) -> None:
    transport.script("a", stream(stream_chunks(["one", " two"])))
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    parts: Any = reply.sse() if consumer == "sse" else aiter(reply)
    await parts.aclose()
    assert [part async for part in parts] == []
    assert events == []  # the reply itself is still to be read or closed
    text = "".join([c["choices"][0]["delta"].get("content") or "" async for c in reply])
    assert text == "one two"
    assert [(r.status, r.deployment) for r in events] == [(200, "a")]


@pytest.mark.parametrize("consumer", ["sse", "chunks"])
async def test_a_consumer_dropped_unfinished_ends_the_stream_with_499(fake_router: MakeRouter,
                                                                      transport: FakeTransport, consumer: str) -> None:
    transport.script("a", stream(stream_chunks(["one", " two", " three"])))
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    parts: Any = reply.sse() if consumer == "sse" else aiter(reply)
    assert await anext(parts)
    del parts
    await settle()
    assert [(r.status, r.deployment) for r in events] == [(499, "a")]
    assert router.table.deployments["a"].in_flight == 0


@pytest.mark.parametrize(("steps", "statuses"), [(0, []), (1, [499]), (2, [499]), (3, [200])])
async def test_a_replayed_stream_completes_like_a_proxied_one(steps: int, statuses: list[int]) -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"content": text}}]} for text in ("one", " two")]
    reply = ReplayStream(chunks, model="chat", deployment="cache", request_id="r1", usage=Usage(1, 2), started=0.0,
                         clock=lambda: 1.0)
    hooked = Hooked()
    reply.on_complete(hooked)
    parts: Any = reply.sse()
    got = [await anext(parts) for _ in range(steps)]
    await parts.aclose()
    await settle()
    assert [r.status for r in hooked] == statuses
    if steps == 3:
        assert got[-1] == b"data: [DONE]\n\n" and orjson.loads(got[1].removeprefix(b"data: ")) == chunks[1]
        assert [part async for part in parts] == []


async def test_a_stream_cut_by_the_upstream_without_resuming_completes_with_502(fake_router: MakeRouter,
                                                                                transport: FakeTransport) -> None:
    transport.script("a", stream([chunk({"role": "assistant", "content": ""}), chunk({"content": "partial"}), cut()]))
    events = Hooked()
    router = fake_router(priced("a", "b", resume_streams=False), listeners=[events])
    reply = await router.chat_stream(model="chat", messages=USER)
    hooked = Hooked()
    reply.on_complete(hooked)
    parts = [part async for part in reply.sse()]
    last = orjson.loads(parts[-1].removeprefix(b"data: "))
    assert last["error"]["code"] == "stream_interrupted" and b"[DONE]" not in b"".join(parts)
    [record] = hooked
    assert (record.status, record.deployment) == (502, None)
    assert [(a.deployment, a.outcome) for a in record.attempts] == [("a", Outcome.RETRY_HERE)]
    assert events == hooked
    assert transport.to("b") == []  # not continued elsewhere


async def test_a_call_no_deployment_answers_finishes_once(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", status(503))
    events = Hooked()
    router = fake_router(priced("a", retries=0), listeners=[events])
    with pytest.raises(AllAttemptsFailedError):
        await router.chat(model="chat", messages=USER)
    [record] = events
    assert (record.status, record.deployment, len(record.attempts)) == (502, None, 1)


async def test_a_failing_hook_is_logged_and_the_others_still_run(fake_router: MakeRouter,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    def broken(record: RequestFinished) -> None:
        raise RuntimeError("hook trouble")

    router = fake_router(priced("a"))  # the fake transport answers "fine", whole or streamed
    after = Hooked()
    with caplog.at_level(logging.ERROR, logger="stellwerk.pipeline"):
        result = await router.chat(model="chat", messages=USER)
        result.on_complete(broken)  # a complete answer runs it at once: still no exception
        reply = await router.chat_stream(model="chat", messages=USER)
        reply.on_complete(broken)
        reply.on_complete(after)
        assert [c async for c in reply]
    assert [r.status for r in after] == [200]
    failures = [r for r in caplog.records if r.name == "stellwerk.pipeline" and "completion hook" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info and r.exc_info[0] is RuntimeError for r in failures)


async def test_a_cancelled_call_finishes_once_with_499(fake_router: MakeRouter, transport: FakeTransport) -> None:
    transport.script("a", hang())
    events = Hooked()
    router = fake_router(priced("a"), listeners=[events])
    pending = asyncio.ensure_future(router.chat(model="chat", messages=USER))
    await asyncio.wait_for(transport.started["a"].wait(), GUARD)
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    assert [(r.status, r.deployment) for r in events] == [(499, None)]
    assert router.table.deployments["a"].in_flight == 0


async def test_an_unexpected_error_finishes_with_500_not_499(fake_router: MakeRouter) -> None:
    async def broken(call: Any, next_handler: Any) -> Any:
        raise RuntimeError("a middleware's bug")

    events = Hooked()
    router = fake_router(priced("a"), listeners=[events], middlewares={"limits": [broken]})
    with pytest.raises(RuntimeError):
        await router.chat(model="chat", messages=USER)
    assert [(r.status, r.deployment) for r in events] == [(500, None)]
