"""Transactional outbox: events are rows written in the same transaction as the change.

A relay then publishes them in id order with an idempotent, acks=all producer and deletes them
once the broker acknowledged them. A crash between the two re-publishes (at least once); the
consumers' inbox makes that harmless. Only one relay per schema runs at a time (a PostgreSQL
advisory lock), so rows of one key reach Kafka in commit order even with several replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload

from stockpit_runtime.logging import get_logger
from stockpit_runtime.messaging_tables import outbox

log = get_logger(__name__)

OUTBOX_PUBLISHED = Counter(
    "stockpit_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
OUTBOX_PENDING = Gauge("stockpit_outbox_pending", "Outbox rows not yet published", ["schema"])


def outbox_row(topic: str, key: bytes | None, event: Envelope[Payload]) -> dict[str, object]:
    return {"topic": topic, "key": key, "value": event.to_json(), "headers": event.headers()}


async def add_to_outbox(
    session: AsyncSession, topic: str, key: bytes | None, events: Sequence[Envelope[Payload]]
) -> None:
    """Stage events for publication; they are sent only if the session's transaction commits."""
    if events:
        await session.execute(sa.insert(outbox), [outbox_row(topic, key, e) for e in events])


class OutboxRelay:
    """Publishes one schema's outbox rows to Kafka, in order, until stopped."""

    def __init__(
        self,
        engine: AsyncEngine,
        producer: AIOKafkaProducer,
        schema: str,
        *,
        batch_size: int = 500,
        idle_poll_s: float = 0.2,
    ) -> None:
        self._engine = engine
        self._producer = producer
        self._schema = schema
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
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
        """Send the oldest unpublished rows and delete them once Kafka acknowledged all."""
        async with self._engine.begin() as connection:
            rows = (
                await connection.execute(
                    sa.select(outbox).order_by(outbox.c.id).limit(self._batch_size)
                )
            ).all()
            if not rows:
                OUTBOX_PENDING.labels(self._schema).set(0)
                return 0
            deliveries = [
                await self._producer.send(
                    row.topic,
                    value=row.value,
                    key=row.key,
                    headers=[(name, value.encode()) for name, value in row.headers.items()],
                )
                for row in rows
            ]
            await asyncio.gather(*deliveries)
            # By id list, not by range: a transaction that took a lower id may commit later.
            await connection.execute(sa.delete(outbox).where(outbox.c.id.in_([r.id for r in rows])))
        OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)
