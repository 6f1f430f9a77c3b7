"""Trace context through the outbox: what a staged row's headers carry, with tracing on and off."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from stockpit_contracts import Envelope, Payload, new_event
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_runtime import tracing
from stockpit_runtime.outbox import outbox_rows

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def _event(pennylane_id: int, caused_by: Envelope[Payload] | None = None) -> Envelope[Payload]:
    payload = DocumentDeleted(
        kind=DocumentKind.INVOICE, pennylane_id=pennylane_id, deleted_at=datetime.now(UTC)
    )
    return new_event(payload, "tenant-a", caused_by=caused_by.meta if caused_by else None)


def _headers(event: Envelope[Payload]) -> dict[str, str]:
    [(_, _, _, headers)] = outbox_rows([("topic", b"k", event)])
    parsed: dict[str, str] = json.loads(headers)
    return parsed


def test_with_tracing_off_a_staged_row_carries_no_trace_context() -> None:
    assert not tracing.ACTIVE
    event = _event(1)
    assert _headers(event) == event.headers()


def test_a_caused_event_continues_the_trace_of_its_cause_through_a_span_of_its_own() -> None:
    spans = InMemorySpanExporter()
    with tracing.export_to(spans):
        provider = tracing.start("inventory")
    try:
        cause, other = _event(1), _event(2)
        messages = [
            [
                *((k, v.encode()) for k, v in cause.headers().items()),
                ("traceparent", PARENT.encode()),
            ],
            [(k, v.encode()) for k, v in other.headers().items()],  # from outside any trace
        ]
        with tracing.consuming(provider.get_tracer("test"), "documents", messages):
            caused = _headers(_event(3, caused_by=cause))
            uncaused = _headers(_event(4, caused_by=other))
    finally:
        tracing.stop(provider)

    [message_span] = spans.get_finished_spans()
    assert message_span.name == "documents process"
    assert message_span.parent is not None
    assert f"{message_span.parent.trace_id:032x}" == TRACE
    assert caused["traceparent"] == (f"00-{TRACE}-{message_span.context.span_id:016x}-01")
    assert "traceparent" not in uncaused
    assert not tracing.ACTIVE
