"""OpenTelemetry traces: spans per request and attempt, GenAI attributes, span events, ``traceparent`` continued.

Spans are read from the SDK's in-memory exporter, and (through a running gateway) from a local OTLP/HTTP
receiver that decodes the exported protobuf.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from stellwerk import Router, load_dict
from stellwerk.gateway import Gateway
from stellwerk.http.server import Request, Response
from stellwerk.sim import SimProvider
from stellwerk.telemetry import AttemptStarted
from stellwerk.telemetry.otel import KINDS, Tracing
from support import USER, CaptureUpstream, closed_port_url, completion_body, config, deployment, error_response, model

StartSim = Callable[..., Awaitable[SimProvider]]
StartUpstream = Callable[..., Awaitable[CaptureUpstream]]
StartGateway = Callable[..., Awaitable[Gateway]]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


@pytest.fixture
async def traced() -> AsyncIterator[tuple[Callable[[dict[str, Any]], Router], InMemorySpanExporter]]:
    """``make(config_dict)``: a router whose spans go to the in-memory exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    routers: list[Router] = []

    def make(data: dict[str, Any]) -> Router:
        holder: list[Router] = []
        tracing = Tracing(provider.get_tracer("test"), lambda: holder[0].table)
        router = Router(load_dict(data), middlewares={"tracing": [tracing.middleware]})
        router.events.subscribe(tracing, *KINDS)
        holder.append(router)
        routers.append(router)
        return router

    yield make, exporter
    for router in routers:
        await router.aclose()
    provider.shutdown()


def by_kind(spans: tuple[ReadableSpan, ...]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    (request,) = [s for s in spans if s.kind is SpanKind.SERVER]
    attempts = sorted((s for s in spans if s.kind is SpanKind.CLIENT), key=lambda s: s.attributes["stellwerk.attempt"])
    return request, attempts


async def test_failover_request_span_attempt_spans_and_traceparent(
        traced: Any, start_sim: StartSim, start_upstream: StartUpstream) -> None:
    make, exporter = traced
    upstream = await start_upstream()
    router = make(config(model("chat", deployment("down", closed_port_url()),
                               deployment("up", upstream.base_url, price={"input_per_mtok": 1, "output_per_mtok": 1}),
                               retries=0)))
    result = await router.chat(model="chat", messages=USER, temperature=0.25, max_tokens=64, top_p=0.5,
                               stop=["END"], headers={"traceparent": TRACEPARENT})
    request, attempts = by_kind(exporter.get_finished_spans())

    assert request.name == "chat chat"
    assert format(request.context.trace_id, "032x") == TRACE_ID
    assert request.parent is not None and format(request.parent.span_id, "016x") == CLIENT_SPAN
    attributes = dict(request.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "chat"
    assert attributes["gen_ai.response.model"] == "up-up"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.temperature"] == 0.25
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert attributes["gen_ai.request.top_p"] == 0.5
    assert attributes["gen_ai.request.stop_sequences"] == ("END",)
    assert attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert attributes["stellwerk.cost_usd"] == pytest.approx(result.cost)
    assert attributes["http.response.status_code"] == 200 and attributes["stellwerk.attempts"] == 2
    assert [e.name for e in request.events] == ["failover"]

    first, second = attempts
    for span in attempts:
        assert span.parent is not None and span.parent.span_id == request.context.span_id
        assert span.context.trace_id == request.context.trace_id
    assert first.attributes["stellwerk.deployment"] == "down" and first.status.status_code is StatusCode.ERROR
    assert first.attributes["stellwerk.outcome"] != "ok" and "error.type" in first.attributes
    assert second.attributes["stellwerk.outcome"] == "ok" and second.attributes["gen_ai.request.model"] == "up-up"
    assert second.attributes["gen_ai.operation.name"] == "chat"

    sent = upstream.last.headers["traceparent"]  # continued: the client's trace, our request span as parent
    assert sent == f"00-{TRACE_ID}-{format(request.context.span_id, '016x')}-01"


async def test_retry_on_the_same_deployment_is_a_span_event(traced: Any, start_upstream: StartUpstream) -> None:
    make, exporter = traced
    answers = [error_response(500, "boom", type_="server_error"), Response(200, completion_body())]

    async def respond(req: Request) -> Response:
        return answers.pop(0)

    upstream = await start_upstream(respond)
    router = make(config(model("chat", deployment("only", upstream.base_url), retries=1,
                               backoff={"base": 0, "cap": 0})))
    await router.chat(model="chat", messages=USER)
    request, attempts = by_kind(exporter.get_finished_spans())
    assert [e.name for e in request.events] == ["retry"]
    assert [a.attributes["stellwerk.outcome"] for a in attempts][-1] == "ok" and len(attempts) == 2
    assert format(request.parent.span_id if request.parent else 0, "x") == "0"  # a new trace without traceparent


async def test_stream_resume_is_a_span_event(traced: Any, start_sim: StartSim) -> None:
    make, exporter = traced
    breaking = await start_sim(drop_mid_stream_rate=1.0, output_tokens=40)
    healthy = await start_sim(output_tokens=40)
    router = make(config(model("chat", deployment("breaks", breaking.base_url), deployment("holds", healthy.base_url))))
    stream = await router.chat_stream(model="chat", messages=USER)
    async for _ in stream:
        pass
    request, _ = by_kind(exporter.get_finished_spans())
    assert "resume" in [e.name for e in request.events]
    resumed = next(e for e in request.events if e.name == "resume")
    assert resumed.attributes == {"stellwerk.broken": "breaks", "stellwerk.resumed_on": "holds",
                                  "stellwerk.chars": resumed.attributes["stellwerk.chars"]}
    assert request.attributes["stellwerk.ttft_s"] > 0


async def test_failed_request_span_has_error_status(traced: Any) -> None:
    make, exporter = traced
    router = make(config(model("chat", deployment("gone", closed_port_url()), retries=0)))
    with pytest.raises(Exception):  # noqa: B017 - the error's type is another test's business
        await router.chat(model="chat", messages=USER)
    request, (attempt,) = by_kind(exporter.get_finished_spans())
    assert request.status.status_code is StatusCode.ERROR
    assert request.attributes["http.response.status_code"] == 503 and request.attributes["error.type"] == "503"
    assert attempt.status.status_code is StatusCode.ERROR


async def test_tracing_off_installs_nothing(start_sim: StartSim, start_gateway: StartGateway) -> None:
    sim = await start_sim()
    gateway = await start_gateway(config(model("chat", deployment("up", sim.base_url))))
    assert gateway.tracer_provider is None
    assert AttemptStarted not in gateway.router.events.heard  # attempt events are not even built


async def test_gateway_exports_otlp_over_http(start_sim: StartSim, start_upstream: StartUpstream) -> None:
    exports: list[ExportTraceServiceRequest] = []
    received = asyncio.Event()

    async def collector(req: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(req.body)
        exports.append(message)
        received.set()
        return Response(200, b"", content_type="application/x-protobuf")

    receiver = await start_upstream(collector)
    sim = await start_sim()
    endpoint = f"http://127.0.0.1:{receiver.server.port}/v1/traces"
    gateway = Gateway(load_dict(config(model("chat", deployment("up", sim.base_url)),
                                       otel={"endpoint": endpoint, "service_name": "gw-test", "sample_ratio": 1.0})))
    await gateway.start("127.0.0.1", 0)
    try:
        from support import request
        answer = await request(gateway.port, "POST", "/v1/chat/completions", {"model": "chat", "messages": USER},
                               headers={"traceparent": TRACEPARENT})
        assert answer.status == 200
    finally:
        await gateway.close(grace=1.0)  # shuts the provider down: the batch is exported now
    assert received.is_set()
    assert receiver.last.path == "/v1/traces" and receiver.last.headers["content-type"] == "application/x-protobuf"
    spans = [(resource, span) for export in exports for resource in export.resource_spans
             for scope in resource.scope_spans for span in scope.spans]
    names = {span.name for _, span in spans}
    assert names == {"chat chat", "attempt up-up"}
    service = {kv.value.string_value for resource, _ in spans for kv in resource.resource.attributes
               if kv.key == "service.name"}
    assert service == {"gw-test"}
    assert {span.trace_id.hex() for _, span in spans} == {TRACE_ID}
    request_span = next(span for _, span in spans if span.name == "chat chat")
    assert request_span.parent_span_id.hex() == CLIENT_SPAN
    attributes = {kv.key: kv.value for kv in request_span.attributes}
    assert attributes["gen_ai.provider.name"].string_value == "openai"
    assert attributes["gen_ai.usage.output_tokens"].int_value > 0
    assert orjson.dumps(sorted(attributes))  # every attribute encodes


async def test_otel_without_the_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from stellwerk.errors import ConfigError

    monkeypatch.setitem(sys.modules, "stellwerk.telemetry.otel", None)  # as if the SDK were not installed
    with pytest.raises(ConfigError, match=r"stellwerk\[otel\]"):
        Gateway(load_dict(config(model("chat", deployment("up", closed_port_url())), otel={})))



async def test_hedge_budget_and_abandoned_attempts_from_events() -> None:
    """Events the sim cannot easily provoke, fed to the listener around a real middleware call."""
    from stellwerk.pipeline import Operation
    from stellwerk.telemetry import AttemptFinished, HedgeSent, RetryBudgetRefused
    from stellwerk.usage import Usage

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = Router(load_dict(config(model("chat", deployment("slow", closed_port_url()),
                                           deployment("fast", closed_port_url())))))
    tracing = Tracing(provider.get_tracer("test"), lambda: router.table)
    call = router.call(Operation.CHAT, {"model": "chat", "messages": USER}, request_id="hedged")

    async def handler(sent: Any) -> Any:
        assert sent.traceparent is not None  # the request span's, for the upstream
        tracing(AttemptStarted(request_id="hedged", model="chat", deployment="slow", number=1))
        tracing(HedgeSent(request_id="hedged", model="chat", slow="slow", hedge="fast", delay=0.25))
        tracing(AttemptStarted(request_id="hedged", model="chat", deployment="fast", number=2))
        tracing(AttemptFinished(request_id="hedged", model="chat", deployment="fast", outcome="retry_here",
                                elapsed=0.1, status=500))
        tracing(RetryBudgetRefused(request_id="hedged", model="chat", deployment=None))
        raise RuntimeError("no answer")

    with pytest.raises(RuntimeError):
        await tracing.middleware(call, handler)
    tracing(call.finished(call.started + 1, status=503, deployment=None, attempts=(), usage=Usage(), cost=0.0))
    request, attempts = by_kind(exporter.get_finished_spans())
    assert [e.name for e in request.events] == ["hedge", "failover", "retry_budget_refused"]
    assert request.events[0].attributes == {"stellwerk.slow": "slow", "stellwerk.hedge": "fast",
                                            "stellwerk.delay_s": 0.25}
    slow, fast = attempts
    assert slow.attributes["stellwerk.outcome"] == "abandoned"  # still open when the request ended
    assert fast.attributes["stellwerk.outcome"] == "retry_here" and fast.attributes["http.response.status_code"] == 500
    assert fast.status.status_code is StatusCode.ERROR
    await router.aclose()
    provider.shutdown()
