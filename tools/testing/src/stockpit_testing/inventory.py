"""Helpers for tests that drive the inventory service over Kafka and HTTP (real servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from inventory.entrypoints.app import InventorySettings
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.documents import (
    CustomerRef,
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.topics import Topic
from stockpit_runtime.kafka_security import kafka_options

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def inventory_settings(
    kafka: str, database_url: str, topic_prefix: str, db_schema: str
) -> InventorySettings:
    return InventorySettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        DATABASE_URL=database_url,
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        consumer_max_attempts=3,
        consumer_retry_backoff_s=0.05,
    )


def document(
    kind: DocumentKind,
    pennylane_id: int,
    lines: Sequence[tuple[int | None, str]],
    *,
    minute: int = 0,
    draft: bool = False,
    quote_id: int | None = None,
    customer: int | None = None,
    credited: int | None = None,
    service_products: Sequence[int] = (),
) -> DocumentVersionRead:
    """A document version; a line is (Pennylane product id or None, quantity)."""
    return DocumentVersionRead(
        kind=kind,
        pennylane_id=pennylane_id,
        draft=draft,
        updated_at=T0 + timedelta(minutes=minute),
        quote_id=quote_id,
        credited_invoice_id=credited,
        customer=CustomerRef(pennylane_id=customer, name=f"Client {customer}")
        if customer
        else None,
        lines=tuple(
            DocumentLine(
                pennylane_line_id=pennylane_id * 1000 + index,
                label=f"line {index}",
                quantity=Decimal(quantity),
                product=ProductRef(
                    pennylane_id=product,
                    label=f"Produit {product}",
                    ledger_account_number="706000" if product in service_products else "707000",
                )
                if product is not None
                else None,
            )
            for index, (product, quantity) in enumerate(lines, start=1)
        ),
    )


async def publish(kafka: str, topic: Topic, prefix: str, events: Sequence[Envelope[Any]]) -> None:
    """Publish as the poller does: keyed by tenant, with the envelope headers."""
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka, **kafka_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                topic.name(prefix),
                value=event.to_json(),
                key=partition_key(event.tenant_id),
                headers=[(k, v.encode()) for k, v in event.headers().items()],
            )
    finally:
        await producer.stop()


def fresh(event: Envelope[Payload]) -> Envelope[Payload]:
    """The same payload under a new event id: what a re-published topic looks like."""
    return new_event(event.payload, event.tenant_id)


async def scalar(database_url: str, sql: str, **params: object) -> object:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(sa.text(sql), params)
    finally:
        await engine.dispose()


async def wait_handled(
    database_url: str, schema: str, group: str, count: int, timeout_s: float = 60
) -> None:
    """Wait until the consumer group claimed `count` events in the inbox (or fail)."""
    claimed: object = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                claimed = await scalar(
                    database_url,
                    f'SELECT count(*) FROM "{schema}".inbox WHERE consumer_group = :g',
                    g=group,
                )
                if claimed == count:
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{group} handled {claimed} events, expected {count}") from None


async def stock_by_pennylane_id(
    client: httpx.AsyncClient, tenant: str
) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    """(real, reserved, incoming) per Pennylane product id, summed over locations."""
    rows: list[dict[str, Any]] = []
    url: str | None = f"/tenants/{tenant}/stock?limit=500"
    while url is not None:
        response = await client.get(url)
        response.raise_for_status()
        rows += response.json()
        url = response.links.get("next", {}).get("url")
    totals: dict[int, tuple[Decimal, Decimal, Decimal]] = {}
    for row in rows:
        real, reserved, incoming = totals.get(
            row["pennylane_product_id"], (Decimal(0), Decimal(0), Decimal(0))
        )
        totals[row["pennylane_product_id"]] = (
            real + Decimal(row["real"]),
            reserved + Decimal(row["reserved"]),
            incoming + Decimal(row["incoming"]),
        )
    return {key: value for key, value in totals.items() if any(value)}
