"""Walking skeleton on the real broker and database: documents topic → inventory → stock topic.

Delivery guarantees checked here: inbox idempotence (the same event twice moves stock once),
transactional outbox (stock-changed event published after the stock commit), dead letters for
broken messages without blocking the partition.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_contracts import Envelope, new_event, parse_event, partition_key
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.payloads.inventory import StockChanged
from stockpit_contracts.topics import INVENTORY_STOCK, PENNYLANE_DOCUMENTS
from stockpit_testing.fixtures import authorized_client, publish_raw, read_topic

pytestmark = pytest.mark.integration


def _invoice(quantity: str, pennylane_id: int = 1001) -> Envelope[DocumentVersionRead]:
    document = DocumentVersionRead(
        kind=DocumentKind.INVOICE,
        pennylane_id=pennylane_id,
        draft=False,
        updated_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        lines=(
            DocumentLine(
                pennylane_line_id=1,
                label="Chaise",
                quantity=Decimal(quantity),
                product=ProductRef(pennylane_id=7, label="Chaise", ledger_account_number="707000"),
            ),
            DocumentLine(
                pennylane_line_id=2,
                label="Installation",
                quantity=Decimal(1),
                product=ProductRef(pennylane_id=8, label="Pose", ledger_account_number="706000"),
            ),
        ),
    )
    return new_event(document, "tenant-a")


async def _real_stock(database_url: str, schema: str, pennylane_id: int) -> Decimal | None:
    """Real stock of the product Pennylane knows as `pennylane_id` (at any location)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                sa.text(
                    f'SELECT l.real FROM "{schema}".stock_levels l JOIN "{schema}".products p '
                    "ON p.product_id::text = l.product_id WHERE p.pennylane_id = :p"
                ),
                {"p": pennylane_id},
            )
    finally:
        await engine.dispose()
    return None if value is None else Decimal(value)


async def _wait_for_stock(
    database_url: str, schema: str, product_id: int, expected: Decimal, timeout_s: float = 30
) -> Decimal | None:
    value = None
    async with asyncio.timeout(timeout_s):
        while (value := await _real_stock(database_url, schema, product_id)) != expected:
            await asyncio.sleep(0.1)
    return value


async def test_an_invoice_moves_stock_once_and_announces_it(
    inventory: FastAPI,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    event = _invoice("3")
    documents = PENNYLANE_DOCUMENTS.name(topic_prefix)
    key = partition_key("tenant-a")
    # The same event delivered twice (a producer retry, a replay): stock moves once.
    await publish_raw(kafka_bootstrap_servers, documents, key, event.to_json())
    await publish_raw(kafka_bootstrap_servers, documents, key, event.to_json())
    # Another invoice proves the consumer went past both copies.
    marker = _invoice("2", pennylane_id=1002)
    await publish_raw(kafka_bootstrap_servers, documents, key, marker.to_json())

    assert await _wait_for_stock(database_url, db_schema, 7, Decimal(-5)) == Decimal(-5)
    assert await _real_stock(database_url, db_schema, 8) is None, "services move no stock"

    records = await read_topic(
        kafka_bootstrap_servers, INVENTORY_STOCK.name(topic_prefix), expect=2
    )
    changes = [parse_event(r.value) for r in records]
    assert [c.payload.delta_real for c in changes if isinstance(c.payload, StockChanged)] == [
        Decimal(-3),
        Decimal(-2),
    ]
    assert changes[0].causation_id == event.event_id
    assert changes[0].correlation_id == event.correlation_id
    first = changes[0].payload
    assert isinstance(first, StockChanged)
    assert first.pennylane_product_id == 7
    assert records[0].key == f"tenant-a:{first.product_id}".encode()
    headers = dict(records[0].headers)
    assert headers["stockpit-event-type"] == b"inventory.stock.changed"


async def test_a_broken_message_is_dead_lettered_and_the_stream_goes_on(
    inventory: FastAPI,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
) -> None:
    documents = PENNYLANE_DOCUMENTS.name(topic_prefix)
    key = partition_key("tenant-a")
    await publish_raw(kafka_bootstrap_servers, documents, key, b"{not json")
    absurd = _invoice("1").model_dump(mode="json")
    absurd["payload"]["lines"][0]["quantity"] = "99999999999"
    await publish_raw(kafka_bootstrap_servers, documents, key, json.dumps(absurd).encode())
    await publish_raw(
        kafka_bootstrap_servers, documents, key, _invoice("4", pennylane_id=1003).to_json()
    )

    assert await _wait_for_stock(database_url, db_schema, 7, Decimal(-4)) == Decimal(-4)
    dead = await read_topic(kafka_bootstrap_servers, f"{documents}.dlq", expect=2)
    reasons = [json.loads(r.value)["reason"] for r in dead]
    assert len(reasons) == 2
    assert "not JSON" in reasons[0]
    assert "quantity" in reasons[1]
    assert json.loads(dead[0].value)["value_excerpt"] == "{not json"

    async with authorized_client(inventory, "http://inventory") as client:
        ready = await client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        metrics = (await client.get("/metrics")).text
        assert 'outcome="dead_lettered"' in metrics
        asyncapi = (await client.get("/asyncapi.json")).json()
        assert documents in json.dumps(asyncapi)
