"""Readiness and metrics of a service built by `create_service_app`, on real Kafka and
PostgreSQL (its relay's own are tested in test_runtime_relay.py)."""

from __future__ import annotations

import asyncio
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


def _settings(kafka: str, database_url: str, schema: str, prefix: str) -> Any:
    return ServiceSettings(
        service_name="ops-test",
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        db_schema=schema,
        topic_prefix=prefix,
        topic_partitions=1,
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
            return {"status": "staged"}

    return create_service_app(
        settings,
        title="ops-test",
        description="a service of the runtime's tests",
        migrations=MIGRATIONS,
        setup=setup,
        api=api,
    )


@pytest.fixture
async def service(
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = _settings(kafka_bootstrap_servers, database_url, db_schema, topic_prefix)
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


async def test_readiness_is_503_when_the_oldest_outbox_row_waits_too_long(
    service: httpx.AsyncClient, database_url: str, db_schema: str, topic_prefix: str
) -> None:
    """No relay publishes this service's rows (none runs here): the service says so too."""
    await _until(lambda: _status(service, 200))
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
    assert (await service.get("/health/live")).status_code == 200, "liveness is the process"
    await _execute(database_url, db_schema, "DELETE FROM outbox")
    await _until(lambda: _status(service, 200))


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
