"""Readiness and metrics of a service built by `create_service_app`, on real Kafka and
PostgreSQL, with the relay as a task and as a child process."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_contracts.payloads.outbound import CustomerWriteRequested
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_runtime.auth import Scope, SecureRouter
from stockpit_runtime.db import create_engine
from stockpit_runtime.outbox import add_to_outbox
from stockpit_runtime.service import ServiceRuntime, create_service_app
from stockpit_runtime.settings import ServiceSettings
from stockpit_testing.fixtures import authorized_client, publish_raw

from .conftest import MIGRATIONS

pytestmark = pytest.mark.integration


def _settings(kafka: str, database_url: str, schema: str, prefix: str, relay: str) -> Any:
    return ServiceSettings(
        service_name="ops-test",
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        db_schema=schema,
        topic_prefix=prefix,
        outbox_relay=relay,
        topic_partitions=1,
        relay_max_failures=2,
        log_level="WARNING",
        # Above a message's limit, so a request can reach the check of the message it makes.
        http_max_body_bytes=4 * 1024 * 1024,
    )


def _app(settings: ServiceSettings) -> FastAPI:
    api = SecureRouter()

    def setup(runtime: ServiceRuntime) -> None:
        async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
            await add_to_outbox(session, f"{settings.topic_prefix}out", b"k", [event])

        runtime.subscribe(PENNYLANE_DOCUMENTS, handler)

        @api.post("/customers", scope=Scope.STOCK_WRITE)
        async def create(body: dict[str, Any]) -> dict[str, str]:
            """Stages a customer write, as inventory's API does."""
            customer = CustomerWriteRequested(
                customer_id="c-1",
                kind="company",
                name=body["name"],
                emails=tuple(body["emails"]),
                changed_at=datetime.now(UTC),
            )
            async with runtime.sessions.begin() as session:
                await add_to_outbox(
                    session,
                    f"{settings.topic_prefix}out",
                    partition_key("tenant-a"),
                    [new_event(customer, "tenant-a")],
                )
            runtime.wake_relay()
            return {"status": "staged"}

    return create_service_app(
        settings,
        title="ops-test",
        description="a service of the runtime's tests",
        migrations=MIGRATIONS,
        setup=setup,
        api=api,
    )


@pytest.fixture(params=["task", "process"])
async def service(
    request: pytest.FixtureRequest,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = _settings(
        kafka_bootstrap_servers, database_url, db_schema, topic_prefix, request.param
    )
    app = _app(settings)
    async with (
        app.router.lifespan_context(app),
        authorized_client(app, base_url="http://ops") as client,
    ):
        yield client


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.2)


async def _execute(database_url: str, schema: str, statement: str) -> None:
    engine = create_engine(database_url, schema)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


async def test_readiness_is_503_naming_the_relay_while_it_is_broken_and_200_after(
    service: httpx.AsyncClient, database_url: str, db_schema: str
) -> None:
    async def ready() -> bool:
        return (await service.get("/health/ready")).status_code == 200

    await _until(ready)
    # The relay cannot read its table: every round fails.
    await _execute(database_url, db_schema, "ALTER TABLE outbox RENAME TO outbox_away")

    async def relay_reported_failing() -> bool:
        response = await service.get("/health/ready")
        return response.status_code == 503 and response.json()["checks"]["relay"].startswith(
            "failed: "
        )

    await _until(relay_reported_failing)
    assert (await service.get("/health/live")).status_code == 200, "liveness is the process"
    metrics = (await service.get("/metrics")).text
    failures = re.search(
        rf'stockpit_outbox_relay_failures_total{{schema="{db_schema}"}} (\S+)', metrics
    )
    assert failures is not None
    assert float(failures.group(1)) >= 2

    await _execute(database_url, db_schema, "ALTER TABLE outbox_away RENAME TO outbox")
    await _until(ready)


async def test_readiness_is_503_when_the_oldest_outbox_row_waits_too_long(
    service: httpx.AsyncClient, database_url: str, db_schema: str, topic_prefix: str
) -> None:
    """Another "replica" holds the relay's lock and publishes nothing: the rows age."""
    await _until(lambda: _status(service, 200))
    engine = create_engine(database_url, db_schema)
    try:
        async with engine.connect() as other_replica:
            failures = await _relay_failures(service, db_schema)
            await _until(lambda: _relay_leads(other_replica, db_schema))
            await _until(lambda: _take_relay_lock(other_replica, db_schema))
            # The relay saw its session cut: it is no longer the leader.
            await _until(lambda: _relay_failures_above(service, db_schema, failures))
            await _execute(
                database_url,
                db_schema,
                "INSERT INTO outbox (topic, key, value, headers, created_at) VALUES"
                f" ('{topic_prefix}stockpit.pennylane.documents', NULL, 'x', '{{}}',"
                " now() - interval '2 hours')",
            )
            response = await service.get("/health/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["outbox"].startswith("failed: 1 rows waiting")
            assert response.json()["checks"]["relay"] == "ok"
            await other_replica.rollback()
            await other_replica.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            await other_replica.commit()
        await _until(lambda: _status(service, 200))
    finally:
        await engine.dispose()


async def _relay_failures(service: httpx.AsyncClient, schema: str) -> float:
    metrics = (await service.get("/metrics")).text
    found = re.search(rf'stockpit_outbox_relay_failures_total{{schema="{schema}"}} (\S+)', metrics)
    return 0.0 if found is None else float(found.group(1))


async def _relay_failures_above(service: httpx.AsyncClient, schema: str, before: float) -> bool:
    return await _relay_failures(service, schema) > before


RELAY_LOCK_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objid = (hashtext(:name)::bigint & 4294967295)::oid AND pid <> pg_backend_pid()"
)


async def _relay_leads(connection: Any, schema: str) -> bool:
    holders = await connection.execute(
        sa.text(RELAY_LOCK_HOLDERS), {"name": f"outbox-relay:{schema}"}
    )
    await connection.commit()
    return bool(holders.all())


async def _take_relay_lock(connection: Any, schema: str) -> bool:
    """Cut the relay's session (as a failover would) and take its lock before it comes back."""
    await connection.execute(
        sa.text(f"SELECT pg_terminate_backend(pid) FROM ({RELAY_LOCK_HOLDERS}) AS holders"),
        {"name": f"outbox-relay:{schema}"},
    )
    taken = await connection.scalar(
        sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"),
        {"name": f"outbox-relay:{schema}"},
    )
    await connection.commit()
    return bool(taken)


async def _status(service: httpx.AsyncClient, status: int) -> bool:
    return (await service.get("/health/ready")).status_code == status


async def test_a_request_that_would_make_a_message_too_large_is_refused_naming_the_field(
    service: httpx.AsyncClient,
) -> None:
    response = await service.post(
        "/customers", json={"name": "Client", "emails": ["x" * 70_000] * 20}
    )
    assert response.status_code == 413, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "emails"]
    ok = await service.post("/customers", json={"name": "Client", "emails": ["a@b.fr"]})
    assert ok.status_code == 200


async def test_the_figures_to_alert_on_are_exposed_with_values(
    service: httpx.AsyncClient, kafka_bootstrap_servers: str, topic_prefix: str, db_schema: str
) -> None:
    event = new_event(
        DocumentDeleted(kind=DocumentKind.INVOICE, pennylane_id=1, deleted_at=datetime.now(UTC)),
        "tenant-a",
    )
    topic = f"{topic_prefix}stockpit.pennylane.documents"
    await publish_raw(kafka_bootstrap_servers, topic, b"tenant-a", event.to_json())
    await publish_raw(kafka_bootstrap_servers, topic, b"tenant-a", b"not json")

    def value(metrics: str, name: str, **labels: str) -> float | None:
        for line in metrics.splitlines():
            if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return None

    async def seen() -> bool:
        metrics = (await service.get("/metrics")).text
        return (
            value(metrics, "stockpit_dead_letters_total", topic=topic) == 1
            and value(metrics, "stockpit_consumer_lag", topic=topic) == 0
        )

    await _until(seen)
    metrics = (await service.get("/metrics")).text
    assert value(metrics, "stockpit_outbox_pending", schema=db_schema) is not None
    assert value(metrics, "stockpit_outbox_oldest_age_seconds", schema=db_schema) is not None
    assert (value(metrics, "stockpit_handler_duration_seconds_count", topic=topic) or 0) >= 1
    assert (
        value(
            metrics,
            "stockpit_http_requests_total",
            method="GET",
            route="/metrics",
            status="200",
        )
        or 0
    ) >= 1
    assert value(metrics, "stockpit_outbox_relay_consecutive_failures", schema=db_schema) in (
        None,
        0,
    )


async def test_readiness_is_503_naming_a_consumer_that_stopped(
    service: httpx.AsyncClient,
) -> None:
    await _until(lambda: _status(service, 200))
    transport = service._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    [subscriber] = app.state.runtime.broker.subscribers
    await subscriber.stop()
    response = await service.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["consumers"].startswith("failed: stopped: ")
    assert (await service.get("/health/live")).status_code == 200
