"""The outbox relay (`stockpit-relay`), on real Kafka and PostgreSQL: woken by the NOTIFY of the
transaction that staged rows, a poll for rows no notification announced, a new session after
its own was cut, and the command's health and metrics on its own port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.kafka import ensure_topics
from stockpit_runtime.outbox import add_to_outbox
from stockpit_runtime.relay import create_relay_app, running_relay
from stockpit_runtime.settings import ServiceSettings
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.integration


def _settings(kafka: str, database_url: str, schema: str, **more: Any) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=kafka,
        database_url=database_url,
        db_schema=schema,
        log_level="WARNING",
        **more,
    )


def _event(number: int) -> Envelope[Payload]:
    payload = DocumentDeleted(
        kind=DocumentKind.INVOICE, pennylane_id=number, deleted_at=datetime.now(UTC)
    )
    return new_event(payload, "tenant-a")


async def _stage(engine: AsyncEngine, topic: str, event: Envelope[Payload]) -> None:
    async with session_factory(engine).begin() as session:
        await add_to_outbox(session, topic, b"tenant-a", [event])


async def _ids(kafka: str, topic: str, expect: int) -> list[Any]:
    records = await read_topic(kafka, topic, expect=expect, timeout_s=60)
    return [parse_event(record.value).event_id for record in records]


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float = 60) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():
            await asyncio.sleep(0.2)


async def test_a_staged_row_is_published_on_the_notification_of_its_commit(
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    """The poll is an hour: only the NOTIFY sent by the staging transaction can wake the relay
    for the second row (the first is published before it is staged)."""
    topic = f"{topic_prefix}notified"
    await ensure_topics(kafka_bootstrap_servers, [topic], partitions=1)
    settings = _settings(kafka_bootstrap_servers, database_url, db_schema, outbox_idle_poll_s=3600)
    first, second = _event(1), _event(2)
    async with running_relay(settings):
        await _stage(engine, topic, first)
        assert await _ids(kafka_bootstrap_servers, topic, 1) == [first.event_id]
        # A rolled-back transaction notifies nobody and stages nothing.
        async with session_factory(engine)() as session:
            await add_to_outbox(session, topic, b"tenant-a", [_event(99)])
            await session.rollback()
        await _stage(engine, topic, second)
        assert await _ids(kafka_bootstrap_servers, topic, 2) == [first.event_id, second.event_id]


async def test_a_row_no_notification_announced_is_published_by_the_poll(
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    topic = f"{topic_prefix}polled"
    await ensure_topics(kafka_bootstrap_servers, [topic], partitions=1)
    settings = _settings(kafka_bootstrap_servers, database_url, db_schema, outbox_idle_poll_s=1)
    first, unannounced = _event(1), _event(2)
    async with running_relay(settings):
        await _stage(engine, topic, first)
        assert await _ids(kafka_bootstrap_servers, topic, 1) == [first.event_id]
        # Written by hand, without the NOTIFY: the relay sleeps until its poll.
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    "INSERT INTO outbox (topic, key, value, headers) VALUES (:t, :k, :v, '{}')"
                ),
                {"t": topic, "k": b"tenant-a", "v": unannounced.to_json()},
            )
        assert await _ids(kafka_bootstrap_servers, topic, 2) == [
            first.event_id,
            unannounced.event_id,
        ]


async def test_the_relay_listens_again_after_its_session_is_cut(
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    topic = f"{topic_prefix}reconnected"
    await ensure_topics(kafka_bootstrap_servers, [topic], partitions=1)
    settings = _settings(kafka_bootstrap_servers, database_url, db_schema, outbox_idle_poll_s=3600)
    events = [_event(n) for n in range(1, 4)]
    application = f"stockpit-relay:{db_schema}"
    async with running_relay(settings) as running:
        await _stage(engine, topic, events[0])
        assert await _ids(kafka_bootstrap_servers, topic, 1) == [events[0].event_id]
        async with engine.begin() as connection:
            cut = await connection.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": application},
            )
        assert cut == 1

        async def leads_again() -> bool:
            return running.relay.leading and running.relay.health.consecutive_failures == 0

        await _until(lambda: _failed_once(running.relay.health))
        await _until(leads_again)
        await _stage(engine, topic, events[1])
        await _stage(engine, topic, events[2])
        assert await _ids(kafka_bootstrap_servers, topic, 3) == [e.event_id for e in events]


async def _failed_once(health: Any) -> bool:
    return health.last_error is not None


async def _relay_command(
    settings: ServiceSettings, port: int, log: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "STOCKPIT_RELAY_MAX_FAILURES": "2",
        "STOCKPIT_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("stockpit-relay")),
            "--schema",
            settings.schema_name,
            "--port",
            str(port),
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_relay_command_publishes_and_its_readiness_names_its_failures(
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    topic = f"{topic_prefix}commanded"
    await ensure_topics(kafka_bootstrap_servers, [topic], partitions=1)
    port = _free_port()
    log = tmp_path / "relay.log"
    process = await _relay_command(
        _settings(kafka_bootstrap_servers, database_url, db_schema), port, log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:

            async def status(code: int) -> bool:
                try:
                    return (await client.get("/health/ready")).status_code == code
                except httpx.TransportError:
                    return False

            await _until(lambda: status(200))
            event = _event(1)
            await _stage(engine, topic, event)
            assert await _ids(kafka_bootstrap_servers, topic, 1) == [event.event_id]

            async def metric(name: str) -> float | None:
                found = re.search(
                    rf'{name}{{schema="{db_schema}"}} (\S+)', (await client.get("/metrics")).text
                )
                return None if found is None else float(found.group(1))

            async def counted() -> bool:
                # The row is deleted, and counted, once Kafka acknowledged it.
                return await metric("stockpit_outbox_published_total") == 1

            await _until(counted)
            assert await metric("stockpit_outbox_pending") == 0

            # The relay cannot read its table: every round fails.
            await _execute(database_url, db_schema, "ALTER TABLE outbox RENAME TO outbox_away")

            async def relay_failing() -> bool:
                response = await client.get("/health/ready")
                relay: str = response.json()["checks"]["relay"]
                return response.status_code == 503 and relay.startswith("failed: ")

            await _until(relay_failing)
            assert (await client.get("/health/live")).status_code == 200, "liveness: the process"
            assert (await metric("stockpit_outbox_relay_failures_total") or 0) >= 2
            await _execute(database_url, db_schema, "ALTER TABLE outbox_away RENAME TO outbox")
            await _until(lambda: status(200))
    finally:
        process.terminate()
        # uvicorn ends by raising the signal it stopped on again: SIGTERM, after a clean stop.
        assert await process.wait() in (0, -15), log.read_text()[-2000:]
    lines = log.read_text().splitlines()
    assert lines, "the relay logs"
    for line in lines:
        json.loads(line)  # every line a JSON object


async def _execute(database_url: str, schema: str, statement: str) -> None:
    engine = create_engine(database_url, schema)
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
async def relay_app(
    engine: AsyncEngine, kafka_bootstrap_servers: str, database_url: str, db_schema: str
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_relay_app(_settings(kafka_bootstrap_servers, database_url, db_schema))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client,
    ):
        yield client


RELAY_LOCK_HOLDERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND objid = (hashtext(:name)::bigint & 4294967295)::oid AND pid <> pg_backend_pid()"
)


async def test_readiness_is_503_when_the_oldest_outbox_row_waits_too_long(
    relay_app: httpx.AsyncClient,
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    """Another replica holds the relay's lock and publishes nothing: the rows age."""
    topic = f"{topic_prefix}aged"
    await ensure_topics(kafka_bootstrap_servers, [topic], partitions=1)

    async def status(code: int) -> bool:
        return (await relay_app.get("/health/ready")).status_code == code

    await _until(lambda: status(200))
    lock = {"name": f"outbox-relay:{db_schema}"}
    async with engine.connect() as other_replica:

        async def take_the_lock() -> bool:
            # Cut the relay's session (as a failover would) and take its lock before it is back.
            await other_replica.execute(
                sa.text(f"SELECT pg_terminate_backend(pid) FROM ({RELAY_LOCK_HOLDERS}) AS h"), lock
            )
            taken = await other_replica.scalar(
                sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"), lock
            )
            await other_replica.commit()
            return bool(taken)

        await _until(take_the_lock)
        await _execute(
            database_url,
            db_schema,
            "INSERT INTO outbox (topic, key, value, headers, created_at) VALUES"
            f" ('{topic}', NULL, 'x', '{{}}', now() - interval '2 hours')",
        )
        response = await relay_app.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["outbox"].startswith("failed: 1 rows waiting")
        await other_replica.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        await other_replica.commit()
    await _until(lambda: status(200))
