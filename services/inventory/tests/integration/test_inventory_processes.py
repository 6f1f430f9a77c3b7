"""The inventory service as real processes: a SIGKILL in the middle of the stream, and two
replicas side by side with HTTP commands at the same time. Stock ends exactly as expected."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from stockpit_contracts import Envelope, Payload, new_event
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_ops.processes import ManagedProcess, relay_process, service_process
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
    kafka: str, database_url: str, topic_prefix: str, db_schema: str, log_dir: Path, name: str
) -> ManagedProcess:
    env = _env(kafka, database_url, topic_prefix, db_schema)
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
