"""Inventory benchmark: invoice lines applied per second from Kafka into PostgreSQL.

2,000 products imported through the catalog topic, stock seeded at 3 locations, then invoices
of 20 lines published on the documents topic in three phases, the tenant's default location
switched between phases so every location takes sales. The inventory service runs as its own
process (as deployed) on its own topics and schema (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL
from the env);
a phase is timed from its first publish until the consumer's inbox holds every invoice, so the
figure covers Kafka, the domain, the ledger, the levels and the outbox of stock events.

The baseline, in the same run: plain asyncpg doing the same row updates for the same lines -
per line one ledger insert and one level upsert (`real = real + delta`), one transaction per
invoice - on tables of the same shape in a schema of its own.

Prints:
  inventory.lines_per_s             invoice lines applied by the service (target >= 5,000)
  inventory.raw_asyncpg_lines_per_s the same row updates with plain asyncpg
  inventory.vs_raw_asyncpg          their ratio (target >= 0.4)
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.topics import PENNYLANE_CATALOG, PENNYLANE_DOCUMENTS, Topic
from stockpit_ops.processes import service_process

PRODUCTS = 2_000
LOCATIONS = 3
INVOICES_PER_PHASE = int(os.environ.get("BENCH_INVOICES_PER_PHASE", "600"))
LINES_PER_INVOICE = 20
TENANT = "bench"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _invoices(rng: random.Random, first_id: int, count: int) -> list[Envelope[Payload]]:
    events: list[Envelope[Payload]] = []
    for pennylane_id in range(first_id, first_id + count):
        products = rng.sample(range(1, PRODUCTS + 1), LINES_PER_INVOICE)
        document = DocumentVersionRead(
            kind=DocumentKind.INVOICE,
            pennylane_id=pennylane_id,
            draft=False,
            updated_at=T0 + timedelta(seconds=pennylane_id),
            lines=tuple(
                DocumentLine(
                    pennylane_line_id=pennylane_id * 100 + index,
                    label=f"Produit {product}",
                    quantity=Decimal(rng.randint(1, 3)),
                    product=ProductRef(
                        pennylane_id=product,
                        label=f"Produit {product}",
                        ledger_account_number="707000",
                    ),
                )
                for index, product in enumerate(products)
            ),
        )
        events.append(new_event(document, TENANT))
    return events


async def _publish(
    bootstrap: str, topic: Topic, prefix: str, events: list[Envelope[Payload]]
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic.name(prefix),
                value=event.to_json(),
                key=partition_key(event.tenant_id),
                headers=[(k, v.encode()) for k, v in event.headers().items()],
            )
            for event in events
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _wait_inbox(connection: asyncpg.Connection, schema: str, group: str, count: int) -> None:
    query = f'SELECT count(*) FROM "{schema}".inbox WHERE consumer_group = $1'
    async with asyncio.timeout(600):
        while True:
            if await connection.fetchval(query, group) >= count:
                return
            await asyncio.sleep(0.02)


async def _service_run(
    bootstrap: str, database_url: str
) -> tuple[float, list[list[tuple[str, Decimal]]]]:
    """Lines per second of the service; returns the lines as (product key, qty) per invoice."""
    run = uuid.uuid4().hex[:8]
    prefix, schema = f"bench{run}.", f"bench_inventory_{run}"
    service = service_process(
        "inventory",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": database_url,
            "STOCKPIT_TOPIC_PREFIX": prefix,
            "STOCKPIT_DB_SCHEMA": schema,
            "STOCKPIT_LOG_LEVEL": "WARNING",
        },
        log_dir=Path(tempfile.mkdtemp(prefix="bench-inventory-")),
    )
    rng = random.Random(7)
    connection = await asyncpg.connect(_plain_dsn(database_url))
    try:
        await asyncio.to_thread(service.start)
        try:
            base_url = service.ready_url.rsplit("/health", 1)[0]
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as api:
                await api.get(f"/tenants/{TENANT}/settings")
                for name in ("Entrepôt", "Boutique"):
                    (
                        await api.post(f"/tenants/{TENANT}/locations", json={"name": name})
                    ).raise_for_status()
                locations = [
                    row["location_id"]
                    for row in (await api.get(f"/tenants/{TENANT}/locations")).json()
                ]
                assert len(locations) == LOCATIONS
                products = [
                    new_event(
                        ProductUpserted(
                            pennylane_id=product,
                            label=f"Produit {product}",
                            reference=f"SKU-{product}",
                            ledger_account_number="707000",
                            updated_at=T0,
                        ),
                        TENANT,
                    )
                    for product in range(1, PRODUCTS + 1)
                ]
                await _publish(bootstrap, PENNYLANE_CATALOG, prefix, products)
                await _wait_inbox(connection, schema, f"{prefix}inventory.catalog", PRODUCTS)
                # Seed stock at every location (level rows and their ledger entries).
                await connection.execute(
                    f'''INSERT INTO "{schema}".stock_levels
                            (tenant_id, product_id, location_id, real, reserved, incoming)
                        SELECT $1, p.product_id::text, l.location_id::text, 100, 0, 0
                        FROM "{schema}".products p CROSS JOIN "{schema}".locations l''',
                    TENANT,
                )
                await connection.execute(
                    f'''INSERT INTO "{schema}".stock_ledger (tenant_id, product_id, location_id,
                            delta_real, delta_reserved, delta_incoming, cause, cause_kind)
                        SELECT tenant_id, product_id, location_id, real, 0, 0, 'seed',
                            'manual_adjustment'
                        FROM "{schema}".stock_levels''',
                )
                group = f"{prefix}inventory.documents"
                elapsed = 0.0
                all_lines: list[list[tuple[str, Decimal]]] = []
                for phase, location in enumerate(locations):
                    response = await api.put(
                        f"/tenants/{TENANT}/settings", json={"default_location_id": location}
                    )
                    response.raise_for_status()
                    events = _invoices(rng, phase * INVOICES_PER_PHASE + 1, INVOICES_PER_PHASE)
                    for event in events:
                        payload = event.payload
                        assert isinstance(payload, DocumentVersionRead)
                        all_lines.append(
                            [
                                (f"{line.product.pennylane_id}:{location}", line.quantity)
                                for line in payload.lines
                                if line.product
                            ]
                        )
                    started = time.perf_counter()
                    await _publish(bootstrap, PENNYLANE_DOCUMENTS, prefix, events)
                    await _wait_inbox(connection, schema, group, (phase + 1) * INVOICES_PER_PHASE)
                    elapsed += time.perf_counter() - started
                balanced = (await api.get(f"/tenants/{TENANT}/reconciliation")).json()["balanced"]
                assert balanced, "levels and ledger disagree"
                entries = await connection.fetchval(
                    f"SELECT count(*) FROM \"{schema}\".stock_ledger WHERE cause_kind = 'document'"
                )
                assert entries == LOCATIONS * INVOICES_PER_PHASE * LINES_PER_INVOICE, entries
        finally:
            service.stop()
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()
    lines = LOCATIONS * INVOICES_PER_PHASE * LINES_PER_INVOICE
    return lines / elapsed, all_lines


async def _raw_run(database_url: str, invoices: list[list[tuple[str, Decimal]]]) -> float:
    schema = f"bench_raw_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(_plain_dsn(database_url))
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        await connection.execute(
            f'''CREATE TABLE "{schema}".stock_levels (
                    tenant_id text, product_id text, location_id text,
                    real numeric(20, 6) NOT NULL, reserved numeric(20, 6) NOT NULL,
                    incoming numeric(20, 6) NOT NULL,
                    PRIMARY KEY (tenant_id, product_id, location_id));
                CREATE TABLE "{schema}".stock_ledger (
                    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                    tenant_id text NOT NULL, product_id text NOT NULL, location_id text NOT NULL,
                    delta_real numeric(20, 6) NOT NULL, delta_reserved numeric(20, 6) NOT NULL,
                    delta_incoming numeric(20, 6) NOT NULL, cause text NOT NULL,
                    recorded_at timestamptz NOT NULL DEFAULT now());
                CREATE INDEX ON "{schema}".stock_ledger (tenant_id, product_id, location_id);'''
        )
        insert_ledger = await connection.prepare(
            f'''INSERT INTO "{schema}".stock_ledger (tenant_id, product_id, location_id,
                    delta_real, delta_reserved, delta_incoming, cause)
                VALUES ($1, $2, $3, $4, 0, 0, $5)'''
        )
        upsert_level = await connection.prepare(
            f'''INSERT INTO "{schema}".stock_levels AS l VALUES ($1, $2, $3, $4, 0, 0)
                ON CONFLICT (tenant_id, product_id, location_id)
                DO UPDATE SET real = l.real + EXCLUDED.real'''
        )
        started = time.perf_counter()
        for number, lines in enumerate(invoices):
            async with connection.transaction():
                for key, quantity in sorted(lines):
                    product, location = key.split(":")
                    await insert_ledger.fetch(
                        TENANT, product, location, -quantity, f"invoice:{number}"
                    )
                    await upsert_level.fetch(TENANT, product, location, -quantity)
        elapsed = time.perf_counter() - started
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await connection.close()
    return sum(len(lines) for lines in invoices) / elapsed


async def main() -> None:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    database_url = os.environ["DATABASE_URL"]
    service_rate, invoices = await _service_run(bootstrap, database_url)
    raw_rate = await _raw_run(database_url, invoices)
    print(f"inventory.lines_per_s: {service_rate:.0f} lines/s")
    print(f"inventory.raw_asyncpg_lines_per_s: {raw_rate:.0f} lines/s")
    print(f"inventory.vs_raw_asyncpg: {service_rate / raw_rate:.2f} ratio")


if __name__ == "__main__":
    asyncio.run(main())
