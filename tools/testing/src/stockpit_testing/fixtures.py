"""Pytest fixtures for tests on a real Kafka broker and a real PostgreSQL server.

Where they come from, in order: `KAFKA_BOOTSTRAP_SERVERS` / `DATABASE_URL` when set (what
`make test` and CI do, with the local servers of `infra/`), else testcontainers when a Docker
engine answers, else the test fails with the way to start the local servers. Never a skip.
Each test gets its own topic prefix and its own database schema, so tests never see each
other's data.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from httpx import ASGITransport, AsyncClient
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_runtime.auth import LocalAuthority
from stockpit_runtime.kafka import delete_topics
from stockpit_runtime.kafka_security import KafkaSecurity, kafka_options
from stockpit_runtime.relay import running_relay

HOW_TO_START = (
    'no {what}: set {var}, or run `make infra-up` and `eval "$(infra/env.sh)"` '
    "(local Kafka and PostgreSQL without Docker), or make a Docker engine available"
)


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if not _docker_answers():
        pytest.fail(HOW_TO_START.format(what="Kafka broker", var="KAFKA_BOOTSTRAP_SERVERS"))
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield container.get_bootstrap_server()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    if not _docker_answers():
        pytest.fail(HOW_TO_START.format(what="PostgreSQL server", var="DATABASE_URL"))
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session", autouse=True)
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAuthority]:
    """The tests' identity provider: a key pair of its own per test session, which every
    service the tests build or start trusts (its settings are put in the environment, where
    in-process settings and child processes read them). Tests call the HTTP APIs with its
    tokens: `authority.headers()` is an operator of every tenant with every scope;
    `authority.headers(tenants=["acme"], scopes=[Scope.STOCK_READ])` a narrower caller."""
    global _authority
    created = _authority = LocalAuthority.create(tmp_path_factory.mktemp("auth"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("STOCKPIT_AUTH", raising=False)
        patch.delenv("STOCKPIT_AUTH_JWKS_URL", raising=False)
        for name, value in created.service_env().items():
            patch.setenv(name, value)
        yield created


_authority: LocalAuthority | None = None


def operator_headers(**token: Any) -> dict[str, str]:
    """`Authorization` for a token of the session's authority: by default an operator of
    every tenant with every scope (`token` narrows it, as `LocalAuthority.token`)."""
    assert _authority is not None, "the session's `authority` fixture has not run"
    return _authority.headers(**token)


def authorized_client(app: Any, base_url: str = "http://service", **token: Any) -> AsyncClient:
    """An HTTP client of an in-process app (ASGI) that sends `operator_headers(**token)`."""
    return AsyncClient(
        transport=ASGITransport(app=app), base_url=base_url, headers=operator_headers(**token)
    )


@asynccontextmanager
async def running_service(app: Any) -> AsyncIterator[Any]:
    """A service's app (`create_service_app`) started in-process, with its outbox relay beside
    it as `stockpit-relay` runs it (here in the same process): what the service stages reaches
    Kafka, as in a running system."""
    async with app.router.lifespan_context(app), running_relay(app.state.runtime.settings):
        yield app


@pytest.fixture
async def topic_prefix(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A prefix no other test uses: its topics are its own, and are deleted afterwards.

    Deleting them keeps a long suite from piling thousands of partitions onto one small broker.
    """
    prefix = f"t{uuid.uuid4().hex[:12]}."
    yield prefix
    if "kafka_bootstrap_servers" in request.fixturenames:
        try:
            await delete_topics(request.getfixturevalue("kafka_bootstrap_servers"), prefix)
        except Exception as exc:  # cleanup must not fail a test that passed
            print(f"could not delete test topics {prefix}*: {exc!r}")


@pytest.fixture
async def db_schema(database_url: str) -> AsyncIterator[str]:
    """A fresh schema name for this test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    await drop_schemas(database_url, name)


class SessionsLeftOpen(AssertionError):
    """Sessions a test left open held locks on its schema's tables after it ended."""


async def drop_schemas(database_url: str, *names: str, patience_s: float = 30) -> None:
    """Drop a test's schemas. A session still holding a lock on one of their tables (a
    transaction some code left open) would make the drop wait forever: after `patience_s`
    the sessions blocking it are named, ended, and the test fails with what they were."""
    engine = create_async_engine(database_url)
    blockers: list[str] = []
    try:
        async with engine.connect() as connection:
            pid = (await connection.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            drop = asyncio.ensure_future(_drop(connection, names))
            while not (await asyncio.wait({drop}, timeout=patience_s))[0]:
                blockers += await _end_blocking_sessions(engine, pid)
            drop.result()
    finally:
        await engine.dispose()
    if blockers:
        raise SessionsLeftOpen(f"sessions left holding locks on {names}: {blockers}")


async def _drop(connection: Any, names: tuple[str, ...]) -> None:
    for name in names:
        await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    await connection.commit()


async def _end_blocking_sessions(engine: Any, pid: int) -> list[str]:
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text(
                    "SELECT pid, application_name, state, xact_start, left(query, 300) AS query,"
                    " pg_terminate_backend(pid) AS ended"
                    " FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:pid))"
                ),
                {"pid": pid},
            )
        ).all()
    return [
        f"pid {r.pid} ({r.application_name or 'no name'}, {r.state}, transaction since"
        f" {r.xact_start}): {r.query}"
        for r in rows
    ]


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    expect: int,
    timeout_s: float = 30,
    security: KafkaSecurity | None = None,
) -> list[Any]:
    """Read `topic` from the start until `expect` records arrived (or the timeout passed)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        **kafka_options(security),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                for partition_records in batch.values():
                    records.extend(partition_records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


async def publish_raw(
    bootstrap_servers: str,
    topic: str,
    key: bytes | None,
    value: bytes,
    *,
    security: KafkaSecurity | None = None,
) -> None:
    """Publish bytes as any producer could (tests of what consumers do with them)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        **kafka_options(security),
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()
