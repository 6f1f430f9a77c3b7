"""The outbox relay as a child process, on real Kafka and PostgreSQL: it publishes what the
service stages, is restarted when it dies, and never outlives its service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_runtime.db import session_factory
from stockpit_runtime.outbox import add_to_outbox
from stockpit_runtime.relay_process import RelayProcess
from stockpit_runtime.settings import ServiceSettings
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.integration


def _settings(kafka_bootstrap_servers: str, database_url: str, db_schema: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="relay-test",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        db_schema=db_schema,
        log_level="WARNING",
        outbox_batch_size=7,
    )


def _events(count: int) -> list[Envelope[Payload]]:
    return [
        new_event(
            DocumentDeleted(
                kind=DocumentKind.INVOICE, pennylane_id=n, deleted_at=datetime.now(UTC)
            ),
            "tenant-a",
        )
        for n in range(1, count + 1)
    ]


async def _outbox_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(sa.text("SELECT count(*) FROM outbox")) or 0)


def _published(schema: str) -> float:
    return REGISTRY.get_sample_value("stockpit_outbox_published_total", {"schema": schema}) or 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


async def test_the_child_publishes_what_is_staged_and_is_restarted_when_it_dies(
    engine: AsyncEngine,
    kafka_bootstrap_servers: str,
    database_url: str,
    db_schema: str,
    topic_prefix: str,
) -> None:
    topic = f"{topic_prefix}relayed"
    relay = RelayProcess(_settings(kafka_bootstrap_servers, database_url, db_schema))
    before = _published(db_schema)
    await relay.start()
    try:
        first = _events(20)
        async with session_factory(engine).begin() as session:
            await add_to_outbox(session, topic, b"same-key", first)
        relay.wake()
        records = await read_topic(kafka_bootstrap_servers, topic, expect=20)
        assert [parse_event(r.value).event_id for r in records] == [e.event_id for e in first]
        # The service's metric counts what the child published.
        async with asyncio.timeout(10):
            while _published(db_schema) - before < 20:
                await asyncio.sleep(0.05)

        pid = relay.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(20):
            while relay.pid in (None, pid) or not relay.alive:
                await asyncio.sleep(0.05)
        second = _events(5)
        async with session_factory(engine).begin() as session:
            await add_to_outbox(session, topic, b"same-key", second)
        relay.wake()
        records = await read_topic(kafka_bootstrap_servers, topic, expect=25)
        assert [parse_event(r.value).event_id for r in records] == [
            e.event_id for e in first + second
        ]
        # Rows are deleted once Kafka acknowledged them: shortly after they can be read.
        async with asyncio.timeout(10):
            while await _outbox_rows(engine):
                await asyncio.sleep(0.05)
    finally:
        await relay.stop()
    assert not relay.alive


PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from stockpit_runtime.relay_process import RelayProcess
    from stockpit_runtime.settings import ServiceSettings

    async def main():
        relay = RelayProcess(ServiceSettings(
            service_name="relay-test", kafka_bootstrap_servers=sys.argv[1],
            database_url=sys.argv[2], db_schema=sys.argv[3], log_level="WARNING"))
        await relay.start()
        print("relay-pid", relay.pid, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_the_child_exits_when_its_service_is_killed(
    engine: AsyncEngine, kafka_bootstrap_servers: str, database_url: str, db_schema: str
) -> None:
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        kafka_bootstrap_servers,
        database_url,
        db_schema,
        stdout=asyncio.subprocess.PIPE,
    )
    assert parent.stdout is not None
    async with asyncio.timeout(30):
        while not (line := await parent.stdout.readline()).startswith(b"relay-pid "):
            assert line, "the parent exited"
    child = int(line.split()[1])
    assert _alive(child)
    parent.kill()
    await parent.wait()
    async with asyncio.timeout(20):
        while _alive(child):
            await asyncio.sleep(0.05)
