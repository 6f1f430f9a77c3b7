"""Transactional outbox: events are rows written in the same transaction as the change.

A relay then publishes them in id order with an idempotent, acks=all producer and deletes them
once the broker acknowledged them. A crash between the two re-publishes (at least once); the
consumers' inbox makes that harmless. Only one relay per schema runs at a time (a PostgreSQL
advisory lock), so rows of one key reach Kafka in commit order even with several replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload

from stockpit_runtime.db import copy_rows, copying_rows, driver_connection
from stockpit_runtime.logging import get_logger

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
    """The outbox rows of messages, in order: `stage_rows` writes them."""
    return [(topic, key, event.to_json(), event.headers_json()) for topic, key, event in messages]


async def stage_rows(session: AsyncSession, rows: Sequence[OutboxRow]) -> None:
    if rows:
        await copy_rows(session, "outbox", OUTBOX_COLUMNS, rows)


def staging_rows(
    session: AsyncSession, rows: Sequence[OutboxRow]
) -> AbstractAsyncContextManager[None]:
    """`stage_rows` while the block runs (see `copying_rows`): the block may make the next rows."""
    return copying_rows(session, "outbox", OUTBOX_COLUMNS, rows)


class OutboxRelay:
    """Publishes one schema's outbox rows to Kafka, in order, until stopped."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        batch_size: int = 2000,
        idle_poll_s: float = 0.2,
        on_published: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._on_published = on_published
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        # Partitions per topic (topics are created with their partitions and never grow here).
        self._partitions: dict[str, list[int]] = {}
        self._key_partitions: dict[tuple[str, bytes], int] = {}
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Called after a commit that added rows, so they leave without waiting for the poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with self._engine.connect() as lock_connection:
                    await self._relay_while_leader(lock_connection)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying", schema=self._schema)
                await asyncio.sleep(1)

    async def _relay_while_leader(self, lock_connection: AsyncConnection) -> None:
        got_lock = await lock_connection.scalar(
            sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"),
            {"name": f"outbox-relay:{self._schema}"},
        )
        await lock_connection.commit()
        if not got_lock:
            await asyncio.sleep(max(self._idle_poll_s, 1.0))
            return
        try:
            while True:
                published = await self.publish_batch()
                if published < self._batch_size:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)
        finally:
            await lock_connection.execute(
                sa.text("SELECT pg_advisory_unlock(hashtext(:name))"),
                {"name": f"outbox-relay:{self._schema}"},
            )

    async def publish_batch(self) -> int:
        """Send the oldest unpublished rows and delete them once Kafka acknowledged all.

        Rows go out in Kafka record batches built here, one per topic partition (rows of one
        partition in id order, so of one key in commit order): appending to a batch costs a
        fraction of a `producer.send` per message, which the relay paid for every event.
        """
        async with self._engine.begin() as connection:
            driver = await driver_connection(connection)
            rows = await driver.fetch(SELECT_OUTBOX, self._batch_size)
            if not rows:
                OUTBOX_PENDING.labels(self._schema).set(0)
                return 0
            deliveries = await self._send(rows)
            await asyncio.gather(*deliveries)
            # By id list, not by range: a transaction that took a lower id may commit later.
            await connection.execute(DELETE_OUTBOX, {"ids": [row["id"] for row in rows]})
        OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        if self._on_published is not None:
            self._on_published(len(rows))
        return len(rows)

    async def _send(self, rows: Sequence[Any]) -> list[asyncio.Future[Any]]:
        producer = self._producer
        deliveries: list[asyncio.Future[Any]] = []
        batches: dict[tuple[str, int], Any] = {}
        for row in rows:
            topic, key, value = row["topic"], row["key"], row["value"]
            headers = [(name, text.encode()) for name, text in row["headers"]]
            partition = await self._partition(topic, key)
            batch = batches.get((topic, partition))
            if batch is None:
                batch = batches[topic, partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers):
                continue
            # The batch is full: send it, and the row in a new one.
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
            batch = batches[topic, partition] = producer.create_batch()
            if not batch.append(key=key, value=value, timestamp=None, headers=headers):
                # Larger than a whole batch: the producer sends it alone (or refuses it).
                del batches[topic, partition]
                deliveries.append(
                    await producer.send(
                        topic,
                        value=value,
                        key=key,
                        partition=partition,
                        headers=headers,
                    )
                )
        for (topic, partition), batch in batches.items():
            deliveries.append(await producer.send_batch(batch, topic, partition=partition))
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
