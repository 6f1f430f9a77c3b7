"""No message stalls an outbox, on real Kafka and PostgreSQL: a row the relay cannot publish is
set aside as a dead letter and every other row goes on; a dead letter is never larger than a
few kilobytes on `T.dlq`, whatever the size of the message it keeps."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload, new_event, parse_event, partition_key
from stockpit_contracts.payloads.connections import redact_connection_command
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_contracts.payloads.outbound import CustomerWriteRequested
from stockpit_contracts.sizes import MAX_MESSAGE_BYTES, MessageTooLarge
from stockpit_runtime.consumer import IncomingMessage, Outcome, ReliableConsumer
from stockpit_runtime.db import session_factory
from stockpit_runtime.kafka import ensure_topics, reliable_producer
from stockpit_runtime.messaging_tables import dead_letters
from stockpit_runtime.outbox import OutboxRelay, add_to_outbox, outbox_rows, stage_rows
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.integration


def _deleted(tenant: str, number: int) -> Envelope[Payload]:
    payload = DocumentDeleted(
        kind=DocumentKind.INVOICE, pennylane_id=number, deleted_at=datetime.now(UTC)
    )
    return new_event(payload, tenant)


def _set_aside(schema: str) -> float:
    return REGISTRY.get_sample_value("stockpit_outbox_set_aside_total", {"schema": schema}) or 0


async def _relay_all(engine: AsyncEngine, bootstrap: str, schema: str) -> None:
    producer = reliable_producer(bootstrap, "no-stall-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, schema, batch_size=50)
        while await relay.publish_batch():
            pass
        await relay.stop()
    finally:
        await producer.stop()


async def _kept(engine: AsyncEngine) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as connection:
        return list((await connection.execute(sa.select(dead_letters))).all())


def test_a_message_too_large_for_its_topic_is_refused_where_it_is_made_naming_the_field() -> None:
    customer = CustomerWriteRequested(
        customer_id="c-1",
        kind="company",
        name="Client",
        emails=tuple(f"{n}{'x' * 70_000}@example.com" for n in range(20)),
        changed_at=datetime.now(UTC),
    )
    with pytest.raises(MessageTooLarge) as refused:
        outbox_rows([("t", b"k", new_event(customer, "tenant-a"))])
    assert refused.value.field == "emails"
    assert refused.value.size > MAX_MESSAGE_BYTES


async def test_an_oversized_row_is_set_aside_and_the_rows_of_other_keys_and_tenants_follow(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str, db_schema: str
) -> None:
    topic = f"{topic_prefix}stockpit.inventory.stock"
    await ensure_topics(kafka_bootstrap_servers, [topic, f"{topic}.dlq"], partitions=2)
    huge = _deleted("tenant-a", 1)
    # A row made before sizes were checked (or by hand): 1.4 MB, more than any topic takes.
    oversized = (
        topic,
        partition_key("tenant-a"),
        huge.to_json() + b" " * 1_400_000,
        huge.headers_json(),
    )
    after = [
        (topic, partition_key("tenant-a"), _deleted("tenant-a", 2)),
        (topic, partition_key("tenant-b"), _deleted("tenant-b", 3)),
        (topic, partition_key("tenant-a", "p-9"), _deleted("tenant-a", 4)),
    ]
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        await stage_rows(session, [oversized])
        await stage_rows(session, outbox_rows(after))
    before = _set_aside(db_schema)

    producer = reliable_producer(kafka_bootstrap_servers, "no-stall-test")
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, db_schema, batch_size=50)
        assert await relay.publish_batch() == 4, "one round takes the set-aside row and the rest"
        assert await relay.publish_batch() == 1, "then the dead letter's record"
        assert await relay.publish_batch() == 0
    finally:
        await producer.stop()

    records = await read_topic(kafka_bootstrap_servers, topic, expect=3)
    assert sorted(parse_event(r.value).event_id for r in records) == sorted(
        event.event_id for _, _, event in after
    )
    assert _set_aside(db_schema) == before + 1
    [kept] = await _kept(engine)
    assert kept.consumer_group == "outbox-relay"
    assert kept.value == oversized[2], "the whole row is kept, to be replayed"
    assert kept.tenant_id == "tenant-a"
    assert "max.message.bytes" in kept.reason
    [record] = await read_topic(kafka_bootstrap_servers, f"{topic}.dlq", expect=1)
    assert len(record.value) < 10_000
    published = json.loads(record.value)
    assert published["dead_letter_id"] == kept.id
    assert published["value_bytes"] == len(oversized[2])


async def test_a_row_the_broker_refuses_is_set_aside_and_the_others_go_on(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str, db_schema: str
) -> None:
    """A topic whose `max.message.bytes` is smaller than what the relay checks: the broker
    refuses the record batch holding the large row; its rows are sent again one by one."""
    topic = f"{topic_prefix}small-topic"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "4000"})]
        )
    finally:
        await admin.close()
    await ensure_topics(kafka_bootstrap_servers, [f"{topic}.dlq"], partitions=1)
    large = CustomerWriteRequested(
        customer_id="c-1",
        kind="company",
        name="Client",
        emails=tuple("x" * 1_000 for _ in range(20)),
        changed_at=datetime.now(UTC),
    )
    events: list[Envelope[Payload]] = [
        _deleted("tenant-a", 1),
        new_event(large, "tenant-a"),
        _deleted("tenant-a", 2),
        _deleted("tenant-b", 3),
    ]
    async with session_factory(engine).begin() as session:
        for event in events:
            await add_to_outbox(session, topic, partition_key(event.tenant_id), [event])
    await _relay_all(engine, kafka_bootstrap_servers, db_schema)

    records = await read_topic(kafka_bootstrap_servers, topic, expect=3)
    assert [parse_event(r.value).event_id for r in records] == [
        events[0].event_id,
        events[2].event_id,
        events[3].event_id,
    ]
    [kept] = await _kept(engine)
    assert kept.error_type == "MessageSizeTooLargeError"
    assert parse_event(kept.value).event_id == events[1].event_id


async def test_the_dead_letter_of_a_950_kb_command_is_small_and_the_outbox_flows(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str, db_schema: str
) -> None:
    """A connection command under the broker's limit whose JSON text escapes to more than it
    (quotes and backslashes double each time): kept whole in the table, a bounded record on
    `T.dlq`, and the events staged after it are published."""
    topic = f"{topic_prefix}stockpit.connections.commands"
    out = f"{topic_prefix}stockpit.pennylane.documents"
    await ensure_topics(kafka_bootstrap_servers, [topic, f"{topic}.dlq", out], partitions=2)
    body = json.dumps(
        {
            "event_type": "connection.connect",
            "schema_version": 1,
            "tenant_id": "tenant-a",
            "payload": {"pennylane_token": "secret-token", "settings": {"x": '"\\' * 237_000}},
        }
    ).encode()
    assert 900_000 < len(body) < MAX_MESSAGE_BYTES

    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        raise AssertionError("an invalid command never reaches its handler")

    consumer = ReliableConsumer(
        session_factory(engine),
        service="poller",
        consumer_group="poller.main",
        redact=redact_connection_command,
    )
    message = IncomingMessage(
        topic=topic, partition=0, offset=7, key=b"tenant-a", value=body, headers=()
    )
    assert await consumer.process(message, handler) is Outcome.DEAD_LETTERED
    later = _deleted("tenant-b", 1)
    async with session_factory(engine).begin() as session:
        await add_to_outbox(session, out, partition_key("tenant-b"), [later])
    before = _set_aside(db_schema)
    await _relay_all(engine, kafka_bootstrap_servers, db_schema)

    [published] = await read_topic(kafka_bootstrap_servers, out, expect=1)
    assert parse_event(published.value).event_id == later.event_id
    assert _set_aside(db_schema) == before, "nothing needed setting aside"
    [kept] = await _kept(engine)
    assert len(kept.value) > 900_000
    assert b"secret-token" not in kept.value
    [record] = await read_topic(kafka_bootstrap_servers, f"{topic}.dlq", expect=1)
    assert len(record.value) < 20_000
    assert json.loads(record.value)["dead_letter_id"] == kept.id


async def test_a_row_the_producer_refuses_at_once_is_set_aside_too(
    engine: AsyncEngine, kafka_bootstrap_servers: str, topic_prefix: str, db_schema: str
) -> None:
    """A small body with 1.1 MB of headers (a replayed foreign message): the producer refuses
    it before sending; it is set aside and the row after it published."""
    topic = f"{topic_prefix}headers"
    await ensure_topics(kafka_bootstrap_servers, [topic, f"{topic}.dlq"], partitions=1)
    odd = _deleted("tenant-a", 1)
    after = _deleted("tenant-b", 2)
    heavy_headers = json.dumps({"stockpit-tenant-id": "tenant-a", "x-note": "n" * 1_100_000})
    async with session_factory(engine).begin() as session:
        await stage_rows(session, [(topic, b"tenant-a", odd.to_json(), heavy_headers)])
        await stage_rows(session, outbox_rows([(topic, b"tenant-b", after)]))
    await _relay_all(engine, kafka_bootstrap_servers, db_schema)

    [published] = await read_topic(kafka_bootstrap_servers, topic, expect=1)
    assert parse_event(published.value).event_id == after.event_id
    [kept] = await _kept(engine)
    assert kept.error_type == "MessageSizeTooLargeError"
    assert parse_event(kept.value).event_id == odd.event_id
