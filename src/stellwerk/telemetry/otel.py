"""OpenTelemetry traces (``pip install 'stellwerk[otel]'``): a span per request, a child span per upstream attempt.

    pipeline stage "tracing" ─► Tracing.middleware: opens the request span (continuing the client's
                                 ``traceparent``), and hands the call on with the span's own
                                 ``traceparent``, which every upstream request carries
    AttemptStarted/Finished  ─► a child span per attempt (kind CLIENT), ended with its outcome
    HedgeSent, StreamResumed,
    RetryBudgetRefused, and
    a later attempt          ─► span events on the request span: hedge, resume, retry_budget_refused,
                                 retry (same deployment again) or failover (another deployment)
    RequestFinished          ─► the request span gets usage, cost, status and the answering deployment; ends

Attributes follow the OpenTelemetry GenAI semantic conventions: ``gen_ai.operation.name``,
``gen_ai.request.model`` (the model the client asked for), ``gen_ai.response.model`` (the upstream's
model that answered), ``gen_ai.provider.name``, ``gen_ai.usage.input_tokens`` / ``output_tokens``, and
the request parameters (``gen_ai.request.temperature``, ``max_tokens``, ``top_p``, …). Stellwerk's own
facts are under ``stellwerk.*``.

With ``server.otel`` unset nothing here is imported or installed: no middleware, no listener, and the
events it would listen to are not even built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags, Tracer
from opentelemetry.trace import set_span_in_context as _in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stellwerk.pipeline import Call, Reply
from stellwerk.pipeline.chain import Handler

from .events import (
    AttemptFinished,
    AttemptStarted,
    Event,
    HedgeSent,
    RequestFinished,
    RetryBudgetRefused,
    StreamResumed,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from stellwerk.config import OtelOptions
    from stellwerk.routing.table import RoutingTable

__all__ = ["KINDS", "PROVIDER_NAMES", "Tracing", "tracer_provider"]

KINDS: tuple[type[Event], ...] = (AttemptStarted, AttemptFinished, HedgeSent, StreamResumed, RetryBudgetRefused,
                                  RequestFinished)
"""The events :class:`Tracing` listens to."""

PROVIDER_NAMES: Mapping[str, str] = {
    "openai": "openai", "azure": "azure.ai.openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "bedrock": "aws.bedrock", "ollama": "ollama",
}
"""Stellwerk's provider names as ``gen_ai.provider.name`` values (the conventions' well-known ones)."""

_PARAMETERS: Mapping[str, str] = {
    "temperature": "gen_ai.request.temperature", "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens", "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty", "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed", "n": "gen_ai.request.choice.count", "stop": "gen_ai.request.stop_sequences",
    "encoding_format": "gen_ai.request.encoding_formats",
}
_MAX_OPEN = 10_000
"""Requests traced at once at most (beyond it, requests go untraced rather than growing memory)."""
_PROPAGATOR = TraceContextTextMapPropagator()


class _Trace:
    __slots__ = ("attempts", "operation", "span", "tried")

    def __init__(self, span: Span, operation: str) -> None:
        self.span = span
        self.operation = operation
        self.attempts: dict[str, list[Span]] = {}
        """Open attempt spans by deployment."""
        self.tried: set[str] = set()


class Tracing:
    """Spans for requests and attempts. Install ``middleware`` at stage ``tracing`` and subscribe the
    instance to :data:`KINDS`::

        tracing = Tracing(provider.get_tracer("stellwerk"), lambda: router.table)
        router = Router(config, middlewares={"tracing": [tracing.middleware]})
        router.events.subscribe(tracing, *KINDS)
    """

    def __init__(self, tracer: Tracer, table: Callable[[], RoutingTable]) -> None:
        self._tracer = tracer
        self._table = table
        self._open: dict[str, _Trace] = {}

    async def middleware(self, call: Call, next_handler: Handler) -> Reply:
        if len(self._open) >= _MAX_OPEN or call.request_id in self._open:
            return await next_handler(call)
        parent = _parent(call.traceparent)
        operation = call.operation.value
        attributes: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.request.model": call.model,
                                      "stellwerk.request_id": call.request_id, "stellwerk.stream": call.stream}
        body = call.body
        for name, attribute in _PARAMETERS.items():
            value = body.get(name)
            if value is not None:
                attributes[attribute] = _attribute(value)
        span = self._tracer.start_span(f"{operation} {call.model}", context=parent, kind=SpanKind.SERVER,
                                       attributes=attributes)
        self._open[call.request_id] = _Trace(span, operation)
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=_in_context(span))
        traceparent = carrier.get("traceparent")
        return await next_handler(call.evolve(traceparent=traceparent) if traceparent else call)

    def __call__(self, event: Event) -> None:
        trace = self._open.get(getattr(event, "request_id", ""))
        if trace is None:
            return
        kind = type(event)
        if kind is AttemptStarted:
            assert isinstance(event, AttemptStarted)
            self._attempt_started(trace, event)
        elif kind is AttemptFinished:
            assert isinstance(event, AttemptFinished)
            spans = trace.attempts.get(event.deployment)
            if spans:
                _end_attempt(spans.pop(0), event)
        elif kind is RequestFinished:
            assert isinstance(event, RequestFinished)
            del self._open[event.request_id]
            self._finish(trace, event)
        elif kind is HedgeSent:
            assert isinstance(event, HedgeSent)
            trace.span.add_event("hedge", {"stellwerk.slow": event.slow, "stellwerk.hedge": event.hedge,
                                           "stellwerk.delay_s": event.delay})
        elif kind is StreamResumed:
            assert isinstance(event, StreamResumed)
            trace.span.add_event("resume", {"stellwerk.broken": event.broken, "stellwerk.resumed_on": event.resumed_on,
                                            "stellwerk.chars": event.chars})
        elif kind is RetryBudgetRefused:
            assert isinstance(event, RetryBudgetRefused)
            trace.span.add_event("retry_budget_refused", {"stellwerk.deployment": event.deployment or ""})

    def _attempt_started(self, trace: _Trace, event: AttemptStarted) -> None:
        deployment = self._table().deployments.get(event.deployment)
        attributes: dict[str, Any] = {"gen_ai.operation.name": trace.operation, "stellwerk.deployment": event.deployment,
                                      "stellwerk.attempt": event.number}
        upstream_model = event.deployment
        if deployment is not None:
            config = deployment.config
            upstream_model = config.model
            attributes["gen_ai.provider.name"] = PROVIDER_NAMES.get(config.provider, config.provider)
            attributes["gen_ai.request.model"] = config.model
        if event.number > 1:
            what = "retry" if event.deployment in trace.tried else "failover"
            trace.span.add_event(what, {"stellwerk.deployment": event.deployment, "stellwerk.attempt": event.number})
        trace.tried.add(event.deployment)
        span = self._tracer.start_span(f"attempt {upstream_model}", context=_in_context(trace.span),
                                       kind=SpanKind.CLIENT, attributes=attributes)
        trace.attempts.setdefault(event.deployment, []).append(span)

    def _finish(self, trace: _Trace, record: RequestFinished) -> None:
        span = trace.span
        for spans in trace.attempts.values():  # attempts cut short without a finish event (a cancelled request)
            for attempt in spans:
                attempt.set_attribute("stellwerk.outcome", "abandoned")
                attempt.end()
        span.set_attribute("http.response.status_code", record.status)
        span.set_attribute("stellwerk.attempts", record.upstream_attempts)
        if record.deployment is not None:
            span.set_attribute("stellwerk.deployment", record.deployment)
            deployment = self._table().deployments.get(record.deployment)
            if deployment is not None:
                span.set_attribute("gen_ai.response.model", deployment.config.model)
                span.set_attribute("gen_ai.provider.name",
                                   PROVIDER_NAMES.get(deployment.config.provider, deployment.config.provider))
            span.set_attribute("gen_ai.usage.input_tokens", record.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", record.usage.completion_tokens)
            span.set_attribute("stellwerk.cost_usd", record.cost)
            span.set_attribute("stellwerk.route", record.route)
        if record.ttft is not None:
            span.set_attribute("stellwerk.ttft_s", record.ttft)
        if record.status >= 400:
            span.set_attribute("error.type", str(record.status))
            span.set_status(Status(StatusCode.ERROR, f"HTTP {record.status}"))
        span.end()


def _end_attempt(span: Span, event: AttemptFinished) -> None:
    span.set_attribute("stellwerk.outcome", event.outcome)
    if event.status is not None:
        span.set_attribute("http.response.status_code", event.status)
    if event.outcome not in ("ok", "cancelled"):
        span.set_attribute("error.type", event.outcome)
        span.set_status(Status(StatusCode.ERROR, event.outcome))
    span.end()


def _parent(traceparent: str | None) -> Context | None:
    """The client's span as a remote parent (``traceparent`` was validated when the call was built)."""
    if traceparent is None:
        return None
    _, trace_id, span_id, flags = traceparent.split("-")[:4]
    context = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))
    if not context.is_valid:
        return None
    return _in_context(NonRecordingSpan(context))


def _attribute(value: Any) -> Any:
    """A request parameter as an attribute value (strings, numbers, booleans, or lists of strings)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return str(value)[:200]


def tracer_provider(options: OtelOptions) -> TracerProvider:
    """An SDK tracer provider exporting OTLP over HTTP in batches, sampling new traces at ``sample_ratio``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(resource=Resource.create({"service.name": options.service_name}),
                              sampler=ParentBased(TraceIdRatioBased(options.sample_ratio)))
    exporter = OTLPSpanExporter(endpoint=options.endpoint) if options.endpoint else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
