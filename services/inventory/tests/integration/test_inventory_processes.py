"""The inventory service as real processes: a SIGKILL in the middle of the stream, two
replicas side by side with HTTP commands at the same time, and one replica with several
documents consumers killed mid-stream. Stock ends exactly as expected."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_contracts.topics import INVENTORY_STOCK, PENNYLANE_DOCUMENTS
from stockpit_ops.processes import ManagedProcess, relay_process, service_process
from stockpit_runtime.kafka_security import kafka_options
from stockpit_testing.fixtures import operator_headers
from stockpit_testing.inventory import document, publish, scalar, stock_by_pennylane_id

pytestmark = pytest.mark.integration

PRODUCTS = 40
LINES_PER_INVOICE = 5


def _invoices(tenant: str, count: int) -> tuple[list[Envelope[Payload]], dict[int, Decimal]]:
    """`count` invoices of distinct products per line, and the real stock they must leave."""
    events: list[Envelope[Payload]] = []
    expected: dict[int, Decimal] = {}
    for number in range(1, count + 1):
        lines = []
        for index in range(LINES_PER_INVOICE):
            product = 1 + (number * 7 + index) % PRODUCTS
            quantity = Decimal(1 + (number + index) % 4)
            lines.append((product, str(quantity)))
            expected[product] = expected.get(product, Decimal(0)) - quantity
        events.append(
            new_event(document(DocumentKind.INVOICE, number, lines, minute=number), tenant)
        )
    return events, expected


def _env(kafka: str, database_url: str, topic_prefix: str, db_schema: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": topic_prefix,
        "STOCKPIT_DB_SCHEMA": db_schema,
    }


def _process(
    kafka: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    log_dir: Path,
    name: str,
    **settings: str,
) -> ManagedProcess:
    env = _env(kafka, database_url, topic_prefix, db_schema) | settings
    return service_process("inventory", env=env, log_dir=log_dir / name)


async def _started_relay(
    kafka: str, database_url: str, topic_prefix: str, db_schema: str, log_dir: Path
) -> ManagedProcess:
    """The schema's outbox relay beside the service processes, as deployed (it outlives their
    kills; without it a service's readiness fails once its stock events wait too long)."""
    env = _env(kafka, database_url, topic_prefix, db_schema)
    relay = relay_process("inventory", env=env, log_dir=log_dir / "relay")
    await asyncio.to_thread(relay.start)
    return relay


def _base_url(process: ManagedProcess) -> str:
    return process.ready_url.rsplit("/health", 1)[0]


async def _handled(database_url: str, schema: str, group: str) -> int:
    count = await scalar(
        database_url, f'SELECT count(*) FROM "{schema}".inbox WHERE consumer_group = :g', g=group
    )
    assert isinstance(count, int)
    return count


async def _wait_handled(database_url: str, schema: str, group: str, at_least: int) -> int:
    async with asyncio.timeout(180):
        while (handled := await _handled(database_url, schema, group)) < at_least:
            await asyncio.sleep(0.05)
    return handled


async def test_sigkill_mid_stream_then_restart_leaves_exact_stock(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    tmp_path: Path,
) -> None:
    tenant = "crash"
    events, expected = _invoices(tenant, 1500)
    group = f"{topic_prefix}inventory.documents"
    service = _process(
        kafka_bootstrap_servers, database_url, topic_prefix, db_schema, tmp_path, "first"
    )
    await asyncio.to_thread(service.start)
    relay = await _started_relay(
        kafka_bootstrap_servers, database_url, topic_prefix, db_schema, tmp_path
    )
    try:
        try:
            publishing = asyncio.create_task(
                publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, events)
            )
            await _wait_handled(database_url, db_schema, group, 30)
            service.kill()
            handled_at_kill = await _handled(database_url, db_schema, group)
            await publishing
        finally:
            service.kill()
        assert handled_at_kill < len(events), "the kill came after the stream was done"

        restarted = _process(
            kafka_bootstrap_servers, database_url, topic_prefix, db_schema, tmp_path, "second"
        )
        await asyncio.to_thread(restarted.start)
        try:
            await _wait_handled(database_url, db_schema, group, len(events))
            async with httpx.AsyncClient(
                base_url=_base_url(restarted), timeout=30, headers=operator_headers()
            ) as api:
                stock = await stock_by_pennylane_id(api, tenant)
                assert stock == {p: (real, Decimal(0), Decimal(0)) for p, real in expected.items()}
                reconciliation = (await api.get(f"/tenants/{tenant}/reconciliation")).json()
                assert reconciliation == {"balanced": True, "mismatches": []}
            entries = await scalar(database_url, f'SELECT count(*) FROM "{db_schema}".stock_ledger')
            assert entries == len(events) * LINES_PER_INVOICE, "no line applied twice or lost"
        finally:
            restarted.stop()
    finally:
        relay.stop()


async def test_two_replicas_side_by_side_lose_no_update(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    tmp_path: Path,
) -> None:
    tenants = [f"shop-{n}" for n in range(6)]
    replicas = [
        _process(kafka_bootstrap_servers, database_url, topic_prefix, db_schema, tmp_path, name)
        for name in ("a", "b")
    ]
    await asyncio.gather(*(asyncio.to_thread(replica.start) for replica in replicas))
    relay = await _started_relay(
        kafka_bootstrap_servers, database_url, topic_prefix, db_schema, tmp_path
    )
    try:
        try:
            everything: list[Envelope[Payload]] = []
            expected: dict[str, dict[int, Decimal]] = {}
            for tenant in tenants:
                events, expected[tenant] = _invoices(tenant, 60)
                everything.extend(events)
            clients = [
                httpx.AsyncClient(
                    base_url=_base_url(replica), timeout=30, headers=operator_headers()
                )
                for replica in replicas
            ]
            try:
                product = (
                    await clients[0].post(f"/tenants/{tenants[0]}/products", json={"name": "Vis"})
                ).json()

                async def adjust(index: int) -> None:
                    response = await clients[index % 2].post(
                        f"/tenants/{tenants[0]}/adjustments",
                        json={
                            "product_id": product["product_id"],
                            "delta": "1.25",
                            "reason": "lot",
                        },
                    )
                    assert response.status_code == 201, response.text

                await asyncio.gather(
                    publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, everything),
                    *(adjust(index) for index in range(40)),
                )
                await _wait_handled(
                    database_url, db_schema, f"{topic_prefix}inventory.documents", len(everything)
                )
                for index, tenant in enumerate(tenants):
                    stock = await stock_by_pennylane_id(clients[index % 2], tenant)
                    stock.pop(None, None)  # type: ignore[call-overload]  # the Stockpit-only product
                    assert stock == {
                        p: (real, Decimal(0), Decimal(0)) for p, real in expected[tenant].items()
                    }
                rows = (
                    await clients[1].get(
                        f"/tenants/{tenants[0]}/stock", params={"product_id": product["product_id"]}
                    )
                ).json()
                assert [Decimal(row["real"]) for row in rows] == [Decimal("50.00")]
            finally:
                for client in clients:
                    await client.aclose()
        finally:
            for replica in replicas:
                replica.stop()
    finally:
        relay.stop()


PARTITIONS = 4


def _tenants_on_every_partition(per_partition: int) -> list[str]:
    """Tenant ids whose keys land `per_partition` on each partition (Kafka's default
    partitioner), so that every consumer of the group has documents to apply."""
    partitioner = DefaultPartitioner()
    every = list(range(PARTITIONS))
    placed: dict[int, list[str]] = {p: [] for p in every}
    number = 0
    while any(len(tenants) < per_partition for tenants in placed.values()):
        tenant = f"multi-{number}"
        number += 1
        partition = partitioner(partition_key(tenant), every, every)
        if len(placed[partition]) < per_partition:
            placed[partition].append(tenant)
    return [tenant for tenants in placed.values() for tenant in tenants]


async def _members_holding_partitions(kafka: str, group: str, members: int) -> None:
    """Until the group is stable with `members` consumers, each holding partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka, **kafka_options())
    await admin.start()
    try:
        async with asyncio.timeout(60):
            while True:
                (response,) = await admin.describe_consumer_groups([group])
                _, _, state, _, _, described, *_ = response.groups[0]
                held = [
                    len(ConsumerProtocolMemberAssignment.decode(member[4]).partitions())
                    for member in described
                    if member[4]
                ]
                if state == "Stable" and len(held) == members and all(held):
                    return
                await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _publish_poison(kafka: str, topic_prefix: str, tenant: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka, **kafka_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            PENNYLANE_DOCUMENTS.name(topic_prefix),
            value=b"{not an envelope",
            key=partition_key(tenant),
        )
    finally:
        await producer.stop()


async def _rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(sa.text(sql))]
    finally:
        await engine.dispose()


async def test_one_replica_with_two_documents_consumers_killed_mid_stream_applies_each_once(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    tmp_path: Path,
) -> None:
    """Two consumers in one process, each with its own partitions of many tenants' documents,
    so their batches interleave on one event loop; a SIGKILL mid-stream makes Kafka deliver
    again what was applied but not yet committed; a poison message on one partition is
    dead-lettered while the other partition's consumer goes on. Every line moves stock once,
    with one ledger entry and one stock event."""
    tenants = _tenants_on_every_partition(2)
    events: list[Envelope[Payload]] = []
    expected: dict[str, dict[int, Decimal]] = {}
    by_tenant = {tenant: _invoices(tenant, 120) for tenant in tenants}
    for number in range(120):  # interleaved, as a poller's tenants would be
        events.extend(by_tenant[tenant][0][number] for tenant in tenants)
    expected = {tenant: stock for tenant, (_, stock) in by_tenant.items()}
    group = f"{topic_prefix}inventory.documents"
    settings = {
        "STOCKPIT_TOPIC_PARTITIONS": str(PARTITIONS),
        "STOCKPIT_DOCUMENTS_CONSUMERS": "2",
        # No relay: the stock events stay in the outbox to be counted.
        "STOCKPIT_OUTBOX_MAX_AGE_S": "3600",
    }

    def replica(name: str) -> ManagedProcess:
        return _process(
            kafka_bootstrap_servers,
            database_url,
            topic_prefix,
            db_schema,
            tmp_path,
            name,
            **settings,
        )

    first = replica("first")
    await asyncio.to_thread(first.start)
    try:
        await _members_holding_partitions(kafka_bootstrap_servers, group, 2)
        half = len(events) // 2
        publishing = asyncio.create_task(
            publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, events[:half])
        )
        await _wait_handled(database_url, db_schema, group, 60)
        first.kill()
        handled_at_kill = await _handled(database_url, db_schema, group)
        await publishing
    finally:
        first.kill()
    assert handled_at_kill < half, "the kill came after the stream was done"

    restarted = replica("second")
    await asyncio.to_thread(restarted.start)
    try:
        await _publish_poison(kafka_bootstrap_servers, topic_prefix, tenants[0])
        await publish(kafka_bootstrap_servers, PENNYLANE_DOCUMENTS, topic_prefix, events[half:])
        await _wait_handled(database_url, db_schema, group, len(events))
        async with httpx.AsyncClient(
            base_url=_base_url(restarted), timeout=30, headers=operator_headers()
        ) as api:
            for tenant in tenants:
                stock = await stock_by_pennylane_id(api, tenant)
                assert stock == {
                    p: (real, Decimal(0), Decimal(0)) for p, real in expected[tenant].items()
                }, tenant
                reconciliation = (await api.get(f"/tenants/{tenant}/reconciliation")).json()
                assert reconciliation == {"balanced": True, "mismatches": []}
    finally:
        restarted.stop()

    dead = await _rows(
        database_url, f'SELECT tenant_id, error_type FROM "{db_schema}".dead_letters'
    )
    assert dead == [(None, "EventDecodeError")]
    entries = {
        str(entry_id)
        for (entry_id,) in await _rows(
            database_url,
            f"SELECT entry_id FROM \"{db_schema}\".stock_ledger WHERE cause_kind = 'document'",
        )
    }
    assert len(entries) == len(events) * LINES_PER_INVOICE, "no line applied twice or lost"
    stock_topic = INVENTORY_STOCK.name(topic_prefix)
    stock_events = [
        json.loads(bytes(value))["payload"]["ledger_entry_id"]
        for (value,) in await _rows(
            database_url,
            f"SELECT value FROM \"{db_schema}\".outbox WHERE topic = '{stock_topic}'",
        )
    ]
    assert len(stock_events) == len(entries)
    assert set(stock_events) == entries, "one stock event per ledger entry"
