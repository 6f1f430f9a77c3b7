"""OpenTelemetry tracing, off unless `STOCKPIT_TRACING=otlp`.

When on, a service traces its HTTP requests (FastAPI), the Kafka messages it consumes
(FastStream's telemetry middleware), its SQL statements (SQLAlchemy) and every httpx request
(the Pennylane client), and exports the spans over OTLP, configured by the standard `OTEL_*`
variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, ...).

Events leave through the outbox, not through FastStream: the trace context current when a
message is staged is stored with the row's headers as a W3C `traceparent`, which the relay
sends with the other headers; the consumer continues that trace. An event caused by a consumed
event takes the trace of its cause (by causation id), so a batch of documents from many
traces keeps each document's trace.

When off, nothing is instrumented and the hot paths only test `ACTIVE`: no span is made.
The state is per process (one service per process); services started in one process (tests)
share it, and it ends when the last of them stops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Literal
from uuid import UUID

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TracingMode = Literal["off", "otlp"]

TRACEPARENT = "traceparent"
# A service's tracer (`ServiceRuntime.tracer`), named for the services that hold one.
ServiceTracer = Tracer
_PROPAGATOR = TraceContextTextMapPropagator()

# True while tracing is on in this process: the only thing hot paths look at when it is off.
ACTIVE = False


class _State:
    """The services traced in this process; the first one's provider also traces httpx and
    `span` (a process runs one service, except in tests)."""

    def __init__(self, provider: TracerProvider) -> None:
        self.tracer: Tracer = provider.get_tracer("stockpit_runtime")
        self.users = 0


_state: _State | None = None
_exporter_override: SpanExporter | None = None

# Trace context of the events being handled, by event id: what `staged_headers` gives the
# events they cause (a batch handles events of many traces in one transaction).
_CAUSES: ContextVar[dict[UUID, str] | None] = ContextVar("stockpit_trace_causes", default=None)


@contextlib.contextmanager
def export_to(exporter: SpanExporter) -> Iterator[None]:
    """Services started in this block export their spans to `exporter` (synchronously)
    instead of OTLP: for tests, with an in-memory exporter."""
    global _exporter_override
    _exporter_override = exporter
    try:
        yield
    finally:
        _exporter_override = None


def start(service_name: str) -> TracerProvider:
    """Turn tracing on for a service: its own tracer provider (its `service.name`); the first
    in the process also instruments httpx."""
    global _state, ACTIVE
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if _exporter_override is not None:
        provider.add_span_processor(SimpleSpanProcessor(_exporter_override))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if _state is None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        _state = _State(provider)
        ACTIVE = True
    _state.users += 1
    return provider


def stop(provider: TracerProvider) -> None:
    """A service that called `start` stopped: its spans are flushed; the last one turns
    tracing off for the process."""
    global _state, ACTIVE
    provider.shutdown()
    if _state is None:
        return
    _state.users -= 1
    if _state.users > 0:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry:
        SQLAlchemyInstrumentor().uninstrument()
    _state = None
    ACTIVE = False


def broker_middlewares(provider: TracerProvider | None) -> tuple[Any, ...]:
    """FastStream's telemetry middleware when tracing is on: a consumer span per message (per
    batch for batch subscribers) continuing the trace of the message's `traceparent`."""
    if provider is None:
        return ()
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

    return (KafkaTelemetryMiddleware(tracer_provider=provider, include_messages_counters=False),)


def instrument_app(app: Any, engine: Any, provider: TracerProvider) -> None:
    """HTTP server spans for `app` and SQL statement spans for `engine`."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="health/.*,metrics"
    )
    # One engine per process is instrumented (the instrumentor is a singleton).
    instrumentor = SQLAlchemyInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # SQLAlchemy 2.1 is outside the versions it declares; the engine events it uses are
        # unchanged, so the declared range is not checked.
        instrumentor.instrument(
            engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True
        )


@contextlib.contextmanager
def span(name: str, **attributes: str) -> Iterator[Span | None]:
    """A span of this service's own work (e.g. one sync of a Pennylane stream); nothing when
    tracing is off."""
    if _state is None:
        yield None
        return
    with _state.tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def _traceparent(span_context: trace.SpanContext) -> str:
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{int(span_context.trace_flags):02x}"
    )


def staged_headers(headers_json: str, causation_id: UUID | None) -> str:
    """An outbox row's headers (a JSON object) with the `traceparent` of its cause, or of the
    current span; unchanged outside any trace. Called only when `ACTIVE`."""
    causes = _CAUSES.get()
    parent = causes.get(causation_id) if causes is not None and causation_id else None
    if parent is None:
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return headers_json
        parent = _traceparent(span_context)
    return f'{headers_json[:-1]},"{TRACEPARENT}":"{parent}"}}'


def traceparent_of(event_id: UUID) -> str | None:
    """The `traceparent` of the event being handled (by id), else of the current span: for
    work queued now and done later (outbound's writes), which `continuing` then resumes.
    None outside any trace. Called only when `ACTIVE`."""
    causes = _CAUSES.get()
    if causes is not None and (parent := causes.get(event_id)) is not None:
        return parent
    span_context = trace.get_current_span().get_span_context()
    return _traceparent(span_context) if span_context.is_valid else None


@contextlib.contextmanager
def continuing(
    tracer: Tracer | None, traceparent: str | None, name: str, **attributes: str
) -> Iterator[Span | None]:
    """A span of `tracer` (a service's) for work done on behalf of a cause queued earlier,
    child of that cause's `traceparent` (a new trace without one); nothing without a tracer
    (tracing off)."""
    if tracer is None:
        yield None
        return
    parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None
    with tracer.start_as_current_span(name, context=parent, attributes=attributes) as current:
        yield current


def _incoming_context(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context | None:
    for name, value in headers:
        if name == TRACEPARENT:
            return _PROPAGATOR.extract({TRACEPARENT: value.decode(errors="replace")})
    return None


EVENT_ID_HEADER = "stockpit-event-id"


def _event_id(headers: Sequence[tuple[str, bytes]]) -> UUID | None:
    for name, value in headers:
        if name == EVENT_ID_HEADER:
            try:
                return UUID(value.decode(errors="replace"))
            except ValueError:
                return None
    return None


@contextlib.contextmanager
def consuming(
    tracer: Tracer, topic: str, messages: Sequence[Sequence[tuple[str, bytes]]]
) -> Iterator[None]:
    """While the events of `messages` (their Kafka headers) are handled: each event's trace is
    continued by a span of its own (child of its message's `traceparent`), unless the current
    span (FastStream's, for a single message) already continues it; events staged by the block
    take the trace of their cause (by the `stockpit-event-id` header). Called only when
    `ACTIVE`."""
    current = trace.get_current_span().get_span_context()
    causes: dict[UUID, str] = {}
    # Not made current: SQL spans of the shared transaction stay under the consumer's span.
    started: list[Span] = []
    for headers in messages:
        parent = _incoming_context(headers)
        event_id = _event_id(headers)
        if parent is None or event_id is None:
            continue
        parent_context = trace.get_current_span(parent).get_span_context()
        if current.is_valid and current.trace_id == parent_context.trace_id:
            causes[event_id] = _traceparent(current)
            continue
        message_span = tracer.start_span(
            f"{topic} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.message.id": str(event_id),
            },
        )
        started.append(message_span)
        causes[event_id] = _traceparent(message_span.get_span_context())
    token = _CAUSES.set(causes)
    try:
        yield
    finally:
        _CAUSES.reset(token)
        for message_span in started:
            message_span.end()
