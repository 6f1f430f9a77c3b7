"""With `STOCKPIT_TRACING` on, one trace follows a Pennylane document across the services, and
one follows a Stockpit change to the outbound service (real Kafka, PostgreSQL and sandbox; the
three services in-process, their spans in one in-memory exporter).

- Document: the poller's sync of invoices (its span) → its request to Pennylane (httpx span) →
  the document's event, staged in the outbox with a `traceparent` and sent by the relay →
  inventory's consumer (a span per document of its batch) → the stock change it stages (whose
  Kafka record carries the same trace).
- Write: a rename over inventory's HTTP API (FastAPI span) → the write request it stages →
  outbound's consumer (FastStream's span), which queues the write with its `traceparent` →
  outbound's worker, later, writing it to Pennylane (its span, and the httpx request under it).

(No document of the poller causes an outbound write: writes start from a Stockpit change.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from inventory.entrypoints.app import InventorySettings
from inventory.entrypoints.app import create_app as inventory_app
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from outbound.entrypoints.app import OutboundSettings
from outbound.entrypoints.app import create_app as outbound_app
from pennylane_sandbox import SandboxConfig, create_app
from pennylane_sandbox.serving import serve_in_thread
from poller.entrypoints.app import PollerSettings
from poller.entrypoints.app import create_app as poller_app
from stockpit_connections import TokenCipher
from stockpit_contracts.topics import INVENTORY_PROBLEMS, INVENTORY_STOCK, PENNYLANE_DOCUMENTS
from stockpit_runtime import tracing
from stockpit_testing.fixtures import authorized_client, drop_schemas, running_service

pytestmark = pytest.mark.integration

TENANT = "tenant-traced"
TOKEN = "tracing-token-123"
API = "/api/external/v2"


@pytest.fixture
async def schemas(database_url: str, db_schema: str) -> AsyncIterator[dict[str, str]]:
    names = {service: f"{db_schema}_{service[0]}" for service in ("poller", "inventory")}
    names["outbound"] = db_schema
    names["connections"] = f"{db_schema}_c"
    yield names
    await drop_schemas(database_url, *names.values())


async def _until(check: Callable[[], Awaitable[Any]], timeout_s: float = 90) -> Any:
    async with asyncio.timeout(timeout_s):
        while not (found := await check()):
            await asyncio.sleep(0.2)
    return found


def _trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


def _attributes(span: ReadableSpan) -> Mapping[str, Any]:
    assert span.attributes is not None
    return span.attributes


def _service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


async def _traceparents(bootstrap: str, topics: list[str]) -> list[str]:
    """The `traceparent` headers of every record on `topics` so far."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[str] = []
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        for records in batch.values():
            for record in records:
                found += [v.decode() for k, v in record.headers or () if k == "traceparent"]
    finally:
        await consumer.stop()
    return found


async def test_one_trace_follows_a_document_and_one_a_write_across_the_services(
    kafka_bootstrap_servers: str, database_url: str, topic_prefix: str, schemas: dict[str, str]
) -> None:
    spans = InMemorySpanExporter()
    common: dict[str, Any] = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "topic_prefix": topic_prefix,
        "tracing": "otlp",
    }
    key = TokenCipher.generate_key()
    sandbox = create_app(SandboxConfig(tokens=[TOKEN]))
    with serve_in_thread(sandbox) as root_url, tracing.export_to(spans):
        # The sandbox's own data: products, customers and invoices naming them.
        async with httpx.AsyncClient(base_url=root_url) as admin:
            seeded = (
                await admin.post(
                    f"/_sandbox/{TOKEN}/seed/customer_invoices",
                    json={"count": 5, "credit_note_share": 0, "draft_share": 0, "seed": 1},
                )
            ).json()
        apps = [
            poller_app(
                PollerSettings(
                    **common,
                    db_schema=schemas["poller"],
                    connections_schema=schemas["connections"],
                    token_key=key,
                    pennylane_base_url=root_url + API,
                    scheduler_tick_s=0.2,
                )
            ),
            inventory_app(InventorySettings(**common, db_schema=schemas["inventory"])),
            outbound_app(
                OutboundSettings(
                    **common,
                    db_schema=schemas["outbound"],
                    pennylane_base_url=root_url + API,
                    pennylane_tokens={TENANT: TOKEN},
                    startup_quiet_s=0,
                )
            ),
        ]
        async with AsyncExitStack() as stack:
            for app in apps:
                await stack.enter_async_context(running_service(app))
            poller, inventory = [
                await stack.enter_async_context(authorized_client(app, base_url="http://s"))
                for app in apps[:2]
            ]
            response = await poller.put(
                f"/connections/{TENANT}",
                json={
                    "pennylane_token": TOKEN,
                    # The sandbox's seeded documents are dated in the past.
                    "settings": {"sync_interval_s": 3600, "documents_since": "2000-01-01"},
                },
            )
            assert response.status_code == 200, response.text

            # --- a document's trace: poller → Pennylane → Kafka → inventory ---------------
            documents = PENNYLANE_DOCUMENTS.name(topic_prefix)

            async def consumed_documents() -> list[ReadableSpan]:
                return [
                    span
                    for span in spans.get_finished_spans()
                    if span.name == f"{documents} process" and _service(span) == "inventory"
                ]

            consumed = await _until(consumed_documents)
            by_trace = {_trace_of(span): span for span in consumed}
            sync_spans = [
                span
                for span in spans.get_finished_spans()
                if span.name == "poller sync customer_invoices" and _trace_of(span) in by_trace
            ]
            assert sync_spans, "an invoice's consumption continues the poller's sync trace"
            trace_id = _trace_of(sync_spans[0])
            same_trace = [s for s in spans.get_finished_spans() if _trace_of(s) == trace_id]
            pennylane_requests = [
                s
                for s in same_trace
                if s.kind is SpanKind.CLIENT
                and "/customer_invoices"
                in str(_attributes(s).get("url.full", _attributes(s).get("http.url")))
            ]
            assert pennylane_requests, "the sync's requests to Pennylane are in its trace"
            assert all(s.parent is not None for s in same_trace if s is not sync_spans[0])
            assert {_service(s) for s in same_trace} == {"poller", "inventory"}
            # What inventory staged for that document carries the trace on, through Kafka.
            effects = [INVENTORY_STOCK.name(topic_prefix), INVENTORY_PROBLEMS.name(topic_prefix)]

            async def staged_in_trace() -> bool:
                parents = await _traceparents(kafka_bootstrap_servers, effects)
                return any(p.split("-")[1] == f"{trace_id:032x}" for p in parents)

            assert await _until(staged_in_trace)
            assert seeded["last_id"] >= seeded["first_id"]

            # --- a write's trace: inventory's HTTP API → Kafka → outbound ---------------
            async def linked_product() -> dict[str, Any] | None:
                listed = (await inventory.get(f"/tenants/{TENANT}/products")).json()
                return next((p for p in listed if p["pennylane_id"] is not None), None)

            product = await _until(linked_product)
            response = await inventory.patch(
                f"/tenants/{TENANT}/products/{product['product_id']}",
                json={"name": "Renamed while traced"},
            )
            assert response.status_code == 200, response.text
            http_span = next(
                span
                for span in spans.get_finished_spans()
                if span.kind is SpanKind.SERVER
                and _service(span) == "inventory"
                and _attributes(span).get("http.route")
                == "/tenants/{tenant_id}/products/{product_id}"
                and _attributes(span).get(
                    "http.request.method", _attributes(span).get("http.method")
                )
                == "PATCH"
            )
            requests_topic = f"{topic_prefix}stockpit.outbound.requests process"

            async def outbound_consumed() -> list[ReadableSpan]:
                return [
                    span
                    for span in spans.get_finished_spans()
                    if span.name == requests_topic and _trace_of(span) == _trace_of(http_span)
                ]

            consumed_write = await _until(outbound_consumed)
            assert {_service(span) for span in consumed_write} == {"outbound"}

            # The write, queued by that consumer and sent later by the worker, is in the trace.
            async def written_to_pennylane() -> list[ReadableSpan]:
                return [
                    span
                    for span in spans.get_finished_spans()
                    if span.name == "outbound write product"
                    and _trace_of(span) == _trace_of(http_span)
                ]

            [write_span] = await _until(written_to_pennylane)
            assert _service(write_span) == "outbound"
            assert write_span.parent is not None
            assert write_span.parent.span_id in {
                span.context.span_id for span in consumed_write if span.context is not None
            }, "the write continues the consumer's span of its request"
            assert write_span.context is not None
            pennylane_writes = [
                s
                for s in spans.get_finished_spans()
                if s.kind is SpanKind.CLIENT
                and s.parent is not None
                and s.parent.span_id == write_span.context.span_id
                and "/products/"
                in str(_attributes(s).get("url.full", _attributes(s).get("http.url")))
            ]
            assert pennylane_writes, "the worker's request to Pennylane is under its span"
