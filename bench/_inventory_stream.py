"""What the inventory benchmarks share: the invoices they publish, how they publish them, and
how they read CPU time and wait for the inbox. Not a benchmark itself (`run_all.sh` skips the
files whose name starts with `_`)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.catalog import ProductUpserted
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.topics import Topic
from stockpit_runtime.kafka_security import kafka_options

LINES_PER_INVOICE = 20
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def catalog_product(tenant: str, pennylane_id: int) -> Envelope[Payload]:
    """A stocked product of the catalog (`Produit <id>`, `SKU-<id>`)."""
    return new_event(
        ProductUpserted(
            pennylane_id=pennylane_id,
            label=f"Produit {pennylane_id}",
            reference=f"SKU-{pennylane_id}",
            ledger_account_number="707000",
            updated_at=T0,
        ),
        tenant,
    )


def invoice(
    rng: random.Random, tenant: str, pennylane_id: int, products: Sequence[int]
) -> Envelope[Payload]:
    """A finalized invoice of LINES_PER_INVOICE lines of 1-3 units, on products drawn from
    `products` (Pennylane ids)."""
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
            for index, product in enumerate(rng.sample(products, LINES_PER_INVOICE))
        ),
    )
    return new_event(document, tenant)


async def publish(
    bootstrap: str, topic: Topic, prefix: str, events: Iterable[Envelope[Payload]]
) -> Counter[int]:
    """Publish keyed by tenant, as the poller does; the events per partition they landed on."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        **kafka_options(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
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
        return Counter(metadata.partition for metadata in await asyncio.gather(*sent))
    finally:
        await producer.stop()


def cpu_s(processes: Iterable[psutil.Process]) -> float:
    """CPU seconds (user + system) of the processes still alive."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def wait_inbox(
    connection: asyncpg.Connection, schema: str, group: str, count: int, timeout_s: float = 900
) -> None:
    """Until the consumer group's inbox holds `count` messages (a liveness bound)."""
    query = f'SELECT count(*) FROM "{schema}".inbox WHERE consumer_group = $1'
    async with asyncio.timeout(timeout_s):
        while True:
            if await connection.fetchval(query, group) >= count:
                return
            await asyncio.sleep(0.02)


def spread_tenants(count: int, partitions: int) -> list[str]:
    """`count` tenant ids whose keys land evenly on the partitions (Kafka's default
    partitioner, murmur2 of the key), as many tenants do once there are many of them."""
    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    per_partition: dict[int, list[str]] = {p: [] for p in every}
    wanted = -(-count // partitions)
    index = 0
    while sum(len(t) for t in per_partition.values()) < wanted * partitions:
        tenant = f"tenant-{index:04d}"
        partition = partitioner(partition_key(tenant), every, every)
        if len(per_partition[partition]) < wanted:
            per_partition[partition].append(tenant)
        index += 1
    tenants = [t for group in zip(*per_partition.values(), strict=True) for t in group]
    return tenants[:count]
