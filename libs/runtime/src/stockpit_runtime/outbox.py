"""Transactional outbox: events are rows written in the same transaction as the change.

A relay (`stockpit-relay`, a process of its own beside each service, see `relay.py`) then
publishes them in id order with an idempotent, acks=all producer and deletes them once the broker
acknowledged them. A crash between the two re-publishes (at least once); the consumers' inbox
makes that harmless. Only one relay per schema runs at a time (a PostgreSQL advisory lock), so
rows of one key reach Kafka in commit order even with several replicas.

The transaction that stages rows also sends a PostgreSQL notification (`NOTIFY_RELAY`): it is
delivered when the transaction commits (never when it rolls back), and wakes the relay, which
LISTENs on the channel of its schema. A slow poll catches what no notification announced (a
relay that was reconnecting, a row written by hand).

No row can stall the outbox. A message too large for its topic is refused where it is made
(`outbox_rows`), and a row the relay still cannot publish (too large, or refused by the broker
for a reason retrying cannot fix) is set aside: kept whole as a dead letter of the consumer group
`outbox-relay` (with the reason, listed and replayed like any dead letter), a bounded record of
it on `T.dlq`, a metric and an error log; the rows after it, of every key and tenant, go on.
Later rows of the same key go on too: that key's consumers miss that one event until an operator
replays it (after which it arrives after them). Holding the key back instead would stop a whole
tenant's documents (their key is the tenant) behind a message that can never be sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.sizes import MAX_MESSAGE_BYTES, ensure_fits

from stockpit_runtime import tracing
from stockpit_runtime.consumer import record_dead_letter
from stockpit_runtime.db import checked_schema, copy_rows, driver_connection
from stockpit_runtime.kafka import reliable_producer
from stockpit_runtime.kafka_security import KafkaSecurity, kafka_options
from stockpit_runtime.logging import get_logger
from stockpit_runtime.messaging_tables import NOTIFY_RELAY, relay_channel
from stockpit_runtime.tasks import stop_tasks

log = get_logger(__name__)

# Fixed statements (prepared once): rows in id order, deleted by id list. The rows are read
# with asyncpg directly, and their headers come as [name, value] pairs that PostgreSQL unpacks
# from the JSON: both cost a fraction of decoding them here, for every event.
SELECT_OUTBOX = (
    "SELECT id, topic, key, value,"
    " ARRAY(SELECT ARRAY[name, text] FROM jsonb_each_text(headers) AS h(name, text)) AS headers"
    " FROM outbox ORDER BY id LIMIT $1"
)
DELETE_OUTBOX = sa.text("DELETE FROM outbox WHERE id = ANY(CAST(:ids AS bigint[]))")

# Partitions of keys remembered by the relay (emptied when full).
KEY_PARTITIONS_KEPT = 100_000

OUTBOX_PUBLISHED = Counter(
    "stockpit_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
OUTBOX_PENDING = Gauge("stockpit_outbox_pending", "Outbox rows not yet published", ["schema"])
OUTBOX_OLDEST_AGE = Gauge(
    "stockpit_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published (0 when none)",
    ["schema"],
)
OUTBOX_SET_ASIDE = Counter(
    "stockpit_outbox_set_aside_total",
    "Outbox rows the relay could not publish and kept as dead letters instead",
    ["schema"],
)
RELAY_FAILURES = Counter(
    "stockpit_outbox_relay_failures_total",
    "Relay rounds that failed (database or broker unavailable...) and were retried",
    ["schema"],
)
RELAY_CONSECUTIVE_FAILURES = Gauge(
    "stockpit_outbox_relay_consecutive_failures",
    "Relay rounds failed in a row (0 once one succeeds)",
    ["schema"],
)

# Broker refusals that concern one message, not the producer or the cluster: retrying cannot
# fix them, and other messages are not affected (anything else is retried, never set aside).
UNPUBLISHABLE = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidTopicError,
    InvalidTimestampError,
    PolicyViolationError,
    TopicAuthorizationFailedError,
)
RELAY_DEAD_LETTER_GROUP = "outbox-relay"


OUTBOX_COLUMNS = ("topic", "key", "value", "headers")

# A message to stage: the full topic name, its key, the event.
OutboxMessage = tuple[str, bytes | None, Envelope[Payload]]
# A row of the outbox table: topic, key, the envelope's JSON, its headers as a JSON object.
OutboxRow = tuple[str, bytes | None, bytes, str]


async def add_to_outbox(
    session: AsyncSession, topic: str, key: bytes | None, events: Sequence[Envelope[Payload]]
) -> None:
    """Stage events for publication; they are sent only if the session's transaction commits."""
    await stage_messages(session, [(topic, key, event) for event in events])


async def stage_messages(session: AsyncSession, messages: Iterable[OutboxMessage]) -> None:
    """Stage messages in order (the relay publishes them in id order) with one COPY."""
    await stage_rows(session, outbox_rows(messages))


def outbox_rows(messages: Iterable[OutboxMessage]) -> list[OutboxRow]:
    """The outbox rows of messages, in order: `stage_rows` writes them.

    Raises `MessageTooLarge` for an event too large to be published (nothing is staged then).
    With tracing on, each row's headers carry the trace it continues (`tracing.staged_headers`)."""
    traced = tracing.ACTIVE
    rows = []
    for topic, key, event in messages:
        value = event.to_json()
        ensure_fits(event.event_type, value)
        headers = event.headers_json()
        if traced:
            headers = tracing.staged_headers(headers, event.causation_id)
        rows.append((topic, key, value, headers))
    return rows


async def stage_rows(session: AsyncSession, rows: Sequence[OutboxRow]) -> None:
    if rows:
        await copy_rows(session, "outbox", OUTBOX_COLUMNS, rows)
        await notify_relay(session)


async def notify_relay(session: AsyncSession) -> None:
    """Wake the relay when the session's transaction commits (for rows staged without
    `stage_rows`)."""
    await session.execute(sa.text(NOTIFY_RELAY))


class RelayHealth:
    """What the relay did, for its metrics and its readiness."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.consecutive_failures = 0
        self.last_error: str | None = None

    def published(self, count: int) -> None:
        OUTBOX_PUBLISHED.labels(self.schema).inc(count)

    def set_aside(self, count: int) -> None:
        OUTBOX_SET_ASIDE.labels(self.schema).inc(count)

    def failed(self, error: str) -> None:
        self.consecutive_failures += 1
        self.last_error = error
        RELAY_FAILURES.labels(self.schema).inc()
        RELAY_CONSECUTIVE_FAILURES.labels(self.schema).set(self.consecutive_failures)

    def succeeded(self) -> None:
        if self.consecutive_failures:
            self.consecutive_failures = 0
            RELAY_CONSECUTIVE_FAILURES.labels(self.schema).set(0)


async def outbox_status(engine: AsyncEngine, schema: str | None = None) -> tuple[int, float]:
    """Rows waiting in the outbox and the age of the oldest (seconds; 0 when empty); sets the
    gauges of `schema` when given (the relay's, which exports them). Read when metrics are
    scraped and readiness is asked, not on the way of the rows."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.text(
                    "SELECT count(*) AS pending, coalesce(extract(epoch FROM"
                    " clock_timestamp() - min(created_at)), 0) AS age FROM outbox"
                )
            )
        ).one()
    pending, age = int(row.pending), max(0.0, float(row.age))
    if schema is not None:
        OUTBOX_PENDING.labels(schema).set(pending)
        OUTBOX_OLDEST_AGE.labels(schema).set(age)
    return pending, age


async def outbox_check(engine: AsyncEngine, max_age_s: float, schema: str | None = None) -> str:
    """The readiness check of an outbox: "ok", or what is wrong (rows waiting too long)."""
    try:
        async with asyncio.timeout(3):
            pending, age = await outbox_status(engine, schema)
    except Exception as exc:  # a readiness check reports, it never raises
        return f"failed: {type(exc).__name__}"
    if age <= max_age_s:
        return "ok"
    return f"failed: {pending} rows waiting, the oldest for {age:.0f} s (more than {max_age_s:g} s)"


class OutboxRelay:
    """Publishes one schema's outbox rows to Kafka, in order, until stopped.

    While it runs (`start`), one connection of its own holds the schema's advisory lock and
    LISTENs on the schema's channel; a notification, or the poll after `idle_poll_s` without
    one, starts the next round. The connection lost, the lock and the notifications go with it:
    the relay reconnects, and its first round publishes whatever was staged meanwhile."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        batch_size: int = 2000,
        idle_poll_s: float = 5.0,
        health: RelayHealth | None = None,
        security: KafkaSecurity | None = None,
    ) -> None:
        self._engine = engine
        # For the producers the relay makes itself (default: the environment's settings).
        self._security = security
        self.health = health if health is not None else RelayHealth(schema)
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        # Partitions per topic (topics are created with their partitions and never grow here).
        self._partitions: dict[str, list[int]] = {}
        self._key_partitions: dict[tuple[str, bytes], int] = {}
        self._task: asyncio.Task[None] | None = None
        # The producer the relay made itself after a refusal (the given one is its caller's).
        self._owned_producer: AIOKafkaProducer | None = None
        # True while this relay holds the lock and listens (a standby replica waits for it).
        self.leading = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self, timeout_s: float = 15.0) -> None:
        if self._task is not None:
            await stop_tasks([self._task], timeout_s=timeout_s, what="outbox relay stop")
            self._task = None
        if self._owned_producer is not None:
            await self._owned_producer.stop()
            self._owned_producer = None

    async def _run(self) -> None:
        while True:
            try:
                async with self._listening_connection() as connection:
                    await self._relay_while_leader(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("outbox relay failed; retrying", schema=self._schema)
                self.health.failed(f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(1)
            finally:
                self.leading = False

    @asynccontextmanager
    async def _listening_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection outside the engine's pool, in autocommit: PostgreSQL delivers
        notifications to a session only between its transactions."""
        _, options = self._engine.dialect.create_connect_args(self._engine.url)
        for sqlalchemy_only in ("prepared_statement_cache_size", "prepared_statement_name_func"):
            options.pop(sqlalchemy_only, None)
        connection = await asyncpg.connect(
            **options,
            server_settings={
                "search_path": checked_schema(self._schema),
                "application_name": f"stockpit-relay:{self._schema}"[:63],
            },
        )
        try:
            yield connection
        finally:
            # Closing ends the session: its lock and its LISTEN go with it.
            try:
                async with asyncio.timeout(5):
                    await connection.close()
            except Exception:
                connection.terminate()

    async def _relay_while_leader(self, connection: asyncpg.Connection) -> None:
        got_lock = await connection.fetchval(
            "SELECT pg_try_advisory_lock(hashtext($1))", f"outbox-relay:{self._schema}"
        )
        if not got_lock:
            self.health.succeeded()
            await asyncio.sleep(self._idle_poll_s)
            return

        def wake(*_: object) -> None:
            self._wake.set()

        # The session cut (failover, restart of PostgreSQL, an operator) frees the lock for
        # another relay and stops the notifications: this one stops leading at once.
        connection.add_termination_listener(wake)
        await connection.add_listener(relay_channel(self._schema), wake)
        self.leading = True
        log.info("outbox relay leads", schema=self._schema)
        while True:
            if connection.is_closed():
                raise ConnectionError("the relay's session (its lock and LISTEN) was lost")
            # A session cut without a word (the network) is found here, before a round.
            await connection.execute("SELECT 1")
            # Cleared before the round reads the rows: a commit announced while it publishes
            # starts the next round at once.
            self._wake.clear()
            published = await self.publish_batch()
            self.health.succeeded()
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)

    async def publish_batch(self) -> int:
        """Send the oldest unpublished rows and delete them once Kafka acknowledged all.

        Rows are handed to the producer in id order (`send`), which batches them per partition
        itself, so the rows of one key reach their partition in commit order. A row that cannot
        be published is set aside in the same transaction (see the module's docstring); one the
        broker refuses is found by sending the rows of the refused producer batch one by one.
        Returns the number of rows taken off the outbox.
        """
        async with self._engine.begin() as connection:
            driver = await driver_connection(connection)
            rows = await driver.fetch(SELECT_OUTBOX, self._batch_size)
            if not rows:
                return 0
            refused: list[tuple[Any, str, str]] = []
            sendable = []
            for row in rows:
                # Sized exactly only when it could matter (headers are a few hundred bytes;
                # a row the estimate misses is refused by the broker, and set aside then).
                size = _record_size(row) if len(row["value"]) > MAX_MESSAGE_BYTES // 2 else 0
                if size > MAX_MESSAGE_BYTES:
                    refused.append(
                        (
                            row,
                            "MessageTooLarge",
                            f"the message is {size} bytes; a message may have"
                            f" {MAX_MESSAGE_BYTES} (max.message.bytes)",
                        )
                    )
                else:
                    sendable.append(row)
            deliveries = await self._send(sendable)
            results = await asyncio.gather(
                *(delivery for delivery, _ in deliveries), return_exceptions=True
            )
            retry_alone: list[Any] = []
            for (_, batch_rows), result in zip(deliveries, results, strict=True):
                if isinstance(result, UNPUBLISHABLE):
                    retry_alone += batch_rows
                elif isinstance(result, BaseException):
                    raise result
            if retry_alone:
                refused += await self._send_one_by_one(retry_alone)
            if refused:
                await self._set_aside(connection, refused)
            # By id list, not by range: a transaction that took a lower id may commit later.
            await connection.execute(DELETE_OUTBOX, {"ids": [row["id"] for row in rows]})
        published = len(rows) - len(refused)
        if published:
            self.health.published(published)
        if refused:
            self.health.set_aside(len(refused))
        return len(rows)

    async def _set_aside(
        self, connection: AsyncConnection, refused: list[tuple[Any, str, str]]
    ) -> None:
        for row, error_type, reason in refused:
            headers = {name: text for name, text in row["headers"]}
            tenant = headers.get("stockpit-tenant-id")
            log.error(
                "outbox row set aside: it cannot be published",
                schema=self._schema,
                topic=row["topic"],
                outbox_id=row["id"],
                tenant_id=tenant,
                event_id=headers.get("stockpit-event-id"),
                size=len(row["value"]),
                error_type=error_type,
                reason=reason[:500],
            )
            await record_dead_letter(
                connection,
                service=self._schema,
                consumer_group=RELAY_DEAD_LETTER_GROUP,
                topic=row["topic"],
                partition=-1,
                offset=int(row["id"]),
                key=row["key"],
                value=row["value"],
                headers=headers,
                tenant=tenant,
                error_type=error_type,
                reason=reason,
                attempts=1,
            )

    async def _send_one_by_one(self, rows: list[Any]) -> list[tuple[Any, str, str]]:
        """Send the rows of record batches the broker refused, one at a time, in id order;
        the refused ones are returned to be set aside.

        The idempotent producer numbers its batches per partition, and a refused batch leaves
        a gap the broker never fills (every later send would fail out of sequence): the rows go
        through a producer without idempotence, one at a time (acks=all), and the relay then
        continues with a new idempotent producer."""
        bootstrap = self._producer.client._bootstrap_servers
        single = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            **kafka_options(self._security),
            acks="all",
            max_request_size=MAX_MESSAGE_BYTES,
        )
        refused: list[tuple[Any, str, str]] = []
        await single.start()
        try:
            for row in sorted(rows, key=lambda row: int(row["id"])):
                headers = [(name, text.encode()) for name, text in row["headers"]]
                partition = await self._partition(row["topic"], row["key"])
                try:
                    await single.send_and_wait(
                        row["topic"],
                        value=row["value"],
                        key=row["key"],
                        partition=partition,
                        headers=headers,
                    )
                except UNPUBLISHABLE as exc:
                    refused.append((row, type(exc).__name__, str(exc) or type(exc).__name__))
        finally:
            await single.stop()
        renewed = reliable_producer(bootstrap, f"outbox-relay-{self._schema}", self._security)
        await renewed.start()
        if self._owned_producer is not None:
            await self._owned_producer.stop()
        self._producer = self._owned_producer = renewed
        return refused

    async def _send(self, rows: Sequence[Any]) -> list[tuple[asyncio.Future[Any], list[Any]]]:
        """Send rows one `producer.send` each (the producer batches them): each delivery with
        its row. A row the producer refuses at once (larger than it may send) is a delivery
        that failed."""
        producer = self._producer
        deliveries: list[tuple[asyncio.Future[Any], list[Any]]] = []
        for row in rows:
            topic, key = row["topic"], row["key"]
            headers = [(name, text.encode()) for name, text in row["headers"]]
            partition = await self._partition(topic, key)
            try:
                delivery = await producer.send(
                    topic, value=row["value"], key=key, partition=partition, headers=headers
                )
            except UNPUBLISHABLE as exc:
                delivery = asyncio.get_running_loop().create_future()
                delivery.set_exception(exc)
            deliveries.append((delivery, [row]))
        return deliveries

    async def _partition(self, topic: str, key: bytes | None) -> int:
        """The partition the producer's default partitioner picks (murmur2 of the key, as the
        Java client and every other producer of these topics do). Keys recur (a tenant's
        products), and aiokafka's murmur2 is pure Python: partitions of keys are remembered."""
        if key is not None and (known := self._key_partitions.get((topic, key))) is not None:
            return known
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        chosen: int = DefaultPartitioner()(key, partitions, partitions)
        if key is not None:
            if len(self._key_partitions) >= KEY_PARTITIONS_KEPT:
                self._key_partitions.clear()
            self._key_partitions[topic, key] = chosen
        return chosen


def _record_size(row: Any) -> int:
    """The size of a row as one Kafka record (what the broker compares with max.message.bytes)."""
    headers = [(name, text.encode()) for name, text in row["headers"]]
    size: int = DefaultRecordBatchBuilder.estimate_size_in_bytes(row["key"], row["value"], headers)
    return size
