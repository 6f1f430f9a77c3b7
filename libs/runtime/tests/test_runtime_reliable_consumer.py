"""The inbox, outbox, retries and dead letters on a real PostgreSQL server (and Kafka for relay)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.documents import (
    DocumentDeleted,
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
)
from stockpit_runtime.consumer import (
    IncomingMessage,
    Outcome,
    PermanentError,
    ReliableConsumer,
    ReplayOutcome,
    replay_dead_letter,
)
from stockpit_runtime.db import session_factory
from stockpit_runtime.kafka import ensure_topics, reliable_producer
from stockpit_runtime.kafka_security import kafka_options
from stockpit_runtime.messaging_tables import dead_letters, outbox
from stockpit_runtime.outbox import OutboxRelay, add_to_outbox
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.integration


def _message(value: bytes, offset: int = 0) -> IncomingMessage:
    return IncomingMessage(
        topic="documents", partition=0, offset=offset, key=b"t", value=value, headers=()
    )


def _event(*, large: bool = False) -> Envelope[Payload]:
    if large:  # about 6 KB: larger than the test's record batches
        lines = tuple(
            DocumentLine(pennylane_line_id=n, label="x" * 150, quantity=Decimal(1))
            for n in range(1, 31)
        )
        document = DocumentVersionRead(
            kind=DocumentKind.INVOICE,
            pennylane_id=5,
            draft=False,
            updated_at=datetime.now(UTC),
            lines=lines,
        )
        return new_event(document, "tenant-a")
    payload = DocumentDeleted(
        kind=DocumentKind.INVOICE, pennylane_id=5, deleted_at=datetime.now(UTC)
    )
    return new_event(payload, "tenant-a")


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


async def test_the_handler_effect_and_the_inbox_claim_commit_together(engine: AsyncEngine) -> None:
    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")

    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        await session.execute(sa.text("INSERT INTO effects VALUES ('done')"))
        await add_to_outbox(session, "out", b"k", [event])

    message = _message(_event().to_json())
    assert await consumer.process(message, handler) is Outcome.HANDLED
    assert await consumer.process(message, handler) is Outcome.DUPLICATE
    assert await _count(engine, "effects") == 1
    assert await _count(engine, "outbox") == 1


async def test_a_failing_handler_leaves_nothing_behind_then_is_dead_lettered(
    engine: AsyncEngine,
) -> None:
    calls = 0

    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        nonlocal calls
        calls += 1
        await session.execute(sa.text("INSERT INTO effects VALUES ('half done')"))
        await add_to_outbox(session, "out", b"k", [event])
        raise RuntimeError("downstream broke")

    consumer = ReliableConsumer(
        session_factory(engine), service="s", consumer_group="g", max_attempts=3, retry_backoff_s=0
    )
    assert await consumer.process(_message(_event().to_json()), handler) is Outcome.DEAD_LETTERED
    assert calls == 3
    assert await _count(engine, "effects") == 0, "the failed attempts rolled back"
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(dead_letters))).all()
        staged = (await connection.execute(sa.select(outbox.c.topic))).scalars().all()
    assert [(r.reason, r.attempts, r.tenant_id) for r in rows] == [
        ("downstream broke", 3, "tenant-a")
    ]
    assert staged == ["documents.dlq"], "only the dead letter itself is published"


async def test_a_permanent_error_is_not_retried(engine: AsyncEngine) -> None:
    calls = 0

    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("unknown product 12")

    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")
    assert await consumer.process(_message(_event().to_json()), handler) is Outcome.DEAD_LETTERED
    assert calls == 1


async def test_a_redelivered_dead_letter_is_recorded_once_and_can_be_replayed(
    engine: AsyncEngine,
) -> None:
    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        raise PermanentError("no")

    sessions = session_factory(engine)
    consumer = ReliableConsumer(sessions, service="s", consumer_group="g")
    message = _message(b"garbage", offset=41)
    await consumer.process(message, handler)
    await consumer.process(message, handler)
    assert await _count(engine, "dead_letters") == 1
    async with sessions.begin() as session:
        dead_id = await session.scalar(sa.select(dead_letters.c.id))
        assert dead_id is not None
        assert await replay_dead_letter(session, dead_id) is ReplayOutcome.REPLAYED
        assert await replay_dead_letter(session, dead_id + 1000) is ReplayOutcome.NOT_FOUND
    async with engine.connect() as connection:
        replayed = (
            await connection.execute(
                sa.select(outbox.c.topic, outbox.c.value).order_by(outbox.c.id)
            )
        ).all()
    assert replayed[-1] == ("documents", b"garbage")


async def test_the_relay_publishes_in_order_and_empties_the_outbox(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}relay"
    events = [_event() for _ in range(30)]
    async with session_factory(engine).begin() as session:
        await add_to_outbox(session, topic, b"same-key", events)
    producer = reliable_producer(kafka_bootstrap_servers, "relay-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, "relay-test", batch_size=7)
        sent = 0
        while published := await relay.publish_batch():
            sent += published
    finally:
        await producer.stop()
    assert sent == 30
    assert await _count(engine, "outbox") == 0
    records = await read_topic(kafka_bootstrap_servers, topic, expect=30)
    assert [parse_event(r.value).event_id for r in records] == [e.event_id for e in events]


async def test_a_redacted_topic_keeps_its_dead_letters_without_the_secret(
    engine: AsyncEngine,
) -> None:
    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        raise PermanentError("no")

    consumer = ReliableConsumer(
        session_factory(engine),
        service="s",
        consumer_group="g",
        redact=lambda raw: raw.replace(b"hunter2", b"*****"),
    )
    await consumer.process(_message(b'{"token": "hunter2"}'), handler)
    async with engine.connect() as connection:
        kept = (await connection.execute(sa.select(dead_letters.c.value))).scalar_one()
        published = (await connection.execute(sa.select(outbox.c.value))).scalar_one()
    assert kept == b'{"token": "*****"}'
    assert b"hunter2" not in published


async def test_the_relay_keeps_each_keys_order_on_the_partition_of_its_key(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str
) -> None:
    """Rows of many keys and two topics; record batches small enough to fill up, and one event
    larger than a whole batch: every key lands where a plain producer would put it, in order."""
    topics = [f"{topic_prefix}relay-a", f"{topic_prefix}relay-b"]
    await ensure_topics(kafka_bootstrap_servers, topics, partitions=3)
    sent: dict[str, list[tuple[bytes | None, UUID]]] = {topic: [] for topic in topics}
    async with session_factory(engine).begin() as session:
        for number in range(120):
            topic = topics[number % 2]
            key = None if number % 17 == 0 else f"key-{number % 9}".encode()
            event = _event(large=number == 50)
            await add_to_outbox(session, topic, key, [event])
            sent[topic].append((key, event.event_id))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap_servers,
        **kafka_options(),
        acks="all",
        enable_idempotence=True,
        max_batch_size=2048,
    )
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, "relay-partitions", batch_size=50)
        while await relay.publish_batch():
            pass
    finally:
        await producer.stop()
    assert await _count(engine, "outbox") == 0
    for topic in topics:
        records = await read_topic(kafka_bootstrap_servers, topic, expect=60)
        assert sorted(parse_event(r.value).event_id for r in records) == sorted(
            event_id for _, event_id in sent[topic]
        ), "every event once"
        for key in {key for key, _ in sent[topic] if key is not None}:
            on_kafka = [r for r in records if r.key == key]
            assert {r.partition for r in on_kafka} == {
                DefaultPartitioner()(key, [0, 1, 2], [0, 1, 2])
            }
            assert [parse_event(r.value).event_id for r in on_kafka] == [
                event_id for sent_key, event_id in sent[topic] if sent_key == key
            ], "in commit order"
