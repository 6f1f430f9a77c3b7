"""Consuming reliably: inbox for idempotence, bounded retries, dead letters, commit after the DB.

`ReliableConsumer.process` runs a handler in one database transaction together with the inbox
claim of the event id, so a redelivered event changes nothing. The Kafka offset is committed by
FastStream only after `process` returned (AckPolicy.NACK_ON_ERROR), that is after the database
commit; if `process` raises (the database itself is down), the message is re-read later.
A message that cannot be decoded, or whose handler fails `max_attempts` times, becomes a dead
letter (a row and an event on `<topic>.dlq`, written in one transaction), and the stream goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from stockpit_contracts import Envelope, EventDecodeError, Payload, parse_event
from stockpit_contracts.payloads.dead_letters import DeadLetter
from stockpit_contracts.sizes import MessageTooLarge, excerpt

from stockpit_runtime.logging import get_logger
from stockpit_runtime.messaging_tables import NOTIFY_RELAY, dead_letters, inbox, outbox

log = get_logger(__name__)

MESSAGES = Counter(
    "stockpit_messages_total",
    "Messages consumed, by outcome",
    ["consumer_group", "topic", "outcome"],
)

DEAD_LETTERS = Counter(
    "stockpit_dead_letters_total",
    "Messages given up on (by consumers, or outbox rows the relay could not publish), by topic",
    ["topic"],
)
HANDLER_SECONDS = Histogram(
    "stockpit_handler_duration_seconds",
    "Time to handle a consumed message or batch (its transaction included), by topic",
    ["consumer_group", "topic", "mode"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

DLQ_SUFFIX = ".dlq"


class PermanentError(Exception):
    """Retrying cannot fix this message (unknown reference, broken rule): dead-letter it now."""


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


EventHandler = Callable[[AsyncSession, Envelope[Payload]], Awaitable[None]]
# Handles many events in one call (in order), so a handler can read and write once per batch.
BatchEventHandler = Callable[[AsyncSession, Sequence[Envelope[Payload]]], Awaitable[None]]


class ReliableConsumer:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        service: str,
        consumer_group: str,
        max_attempts: int = 5,
        retry_backoff_s: float = 0.2,
        redact: Callable[[bytes], bytes] | None = None,
    ) -> None:
        """`redact` rewrites a message body before it is kept as a dead letter (for topics whose
        messages may carry secrets, such as Pennylane tokens); a redacted dead letter keeps what
        an operator needs to see, and its replay carries the redacted body."""
        self._sessions = sessions
        self._redact = redact
        self._service = service
        self._group = consumer_group
        self._max_attempts = max_attempts
        self._backoff_s = retry_backoff_s

    async def process(self, message: IncomingMessage, handler: EventHandler) -> Outcome:
        try:
            event = parse_event(message.value)
        except EventDecodeError as exc:
            return await self._dead_letter(message, exc, attempts=1)
        bound = log.bind(partition=message.partition, offset=message.offset)
        # Every log of the handler (and of the libraries it calls) names the event.
        with structlog.contextvars.bound_contextvars(
            topic=message.topic,
            event_id=str(event.event_id),
            event_type=event.event_type,
            tenant_id=event.tenant_id,
        ):
            return await self._attempts(message, event, handler, bound)

    async def _attempts(
        self,
        message: IncomingMessage,
        event: Envelope[Payload],
        handler: EventHandler,
        bound: structlog.stdlib.BoundLogger,
    ) -> Outcome:
        for attempt in range(1, self._max_attempts + 1):
            try:
                started = time.perf_counter()
                outcome = await self._handle_once(event, handler)
                HANDLER_SECONDS.labels(self._group, message.topic, "single").observe(
                    time.perf_counter() - started
                )
            except (PermanentError, ValidationError, MessageTooLarge) as exc:
                bound.error("message rejected", error=str(exc), error_type=type(exc).__name__)
                return await self._dead_letter(
                    message, exc, attempts=attempt, tenant=event.tenant_id
                )
            except Exception as exc:
                if attempt == self._max_attempts:
                    bound.exception("message failed; giving up", attempts=attempt)
                    return await self._dead_letter(
                        message, exc, attempts=attempt, tenant=event.tenant_id
                    )
                bound.warning("message failed; retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))
            else:
                self._count(message, outcome)
                return outcome
        raise AssertionError("unreachable: the loop returns on its last attempt")

    async def process_batch(
        self,
        messages: Sequence[IncomingMessage],
        handler: EventHandler,
        batch_handler: BatchEventHandler | None = None,
    ) -> list[Outcome]:
        """Handle a batch in ONE transaction (one commit, one inbox insert for every claim).

        Events run in order; each is claimed in the inbox, so duplicates inside the batch or
        already handled are skipped. The claimed events go to `batch_handler` in one call when
        there is one, else to `handler` one after the other. If anything fails, the transaction
        is rolled back and the batch is processed again message by message with `handler`
        (`process`), so retries and dead letters stay per message and a broken message never
        holds the others back.
        """
        events: list[Envelope[Payload]] = []
        for message in messages:
            try:
                events.append(parse_event(message.value))
            except EventDecodeError:
                return [await self.process(message, handler) for message in messages]
        try:
            started = time.perf_counter()
            outcomes = await self._handle_batch_once(events, handler, batch_handler)
            HANDLER_SECONDS.labels(self._group, messages[0].topic, "batch").observe(
                time.perf_counter() - started
            )
        except Exception as exc:
            log.warning(
                "batch failed; processing it message by message",
                size=len(messages),
                error=repr(exc),
            )
            return [await self.process(message, handler) for message in messages]
        for message, outcome in zip(messages, outcomes, strict=True):
            self._count(message, outcome)
        return outcomes

    async def _handle_batch_once(
        self,
        events: Sequence[Envelope[Payload]],
        handler: EventHandler,
        batch_handler: BatchEventHandler | None,
    ) -> list[Outcome]:
        async with self._sessions.begin() as session:
            claimed = set(
                (
                    await session.execute(
                        insert(inbox)
                        .values(
                            [
                                {"event_id": event.event_id, "consumer_group": self._group}
                                for event in events
                            ]
                        )
                        .on_conflict_do_nothing()
                        .returning(inbox.c.event_id)
                    )
                ).scalars()
            )
            outcomes: list[Outcome] = []
            fresh: list[Envelope[Payload]] = []
            for event in events:
                if event.event_id not in claimed:
                    outcomes.append(Outcome.DUPLICATE)
                    continue
                claimed.discard(event.event_id)  # a second copy in the batch is a duplicate
                fresh.append(event)
                outcomes.append(Outcome.HANDLED)
            if batch_handler is not None:
                await batch_handler(session, fresh)
            else:
                for event in fresh:
                    await handler(session, event)
        return outcomes

    async def _handle_once(self, event: Envelope[Payload], handler: EventHandler) -> Outcome:
        async with self._sessions.begin() as session:
            claimed = await session.scalar(
                insert(inbox)
                .values(event_id=event.event_id, consumer_group=self._group)
                .on_conflict_do_nothing()
                .returning(inbox.c.event_id)
            )
            if claimed is None:
                return Outcome.DUPLICATE
            await handler(session, event)
        return Outcome.HANDLED

    async def _dead_letter(
        self,
        message: IncomingMessage,
        error: Exception,
        *,
        attempts: int,
        tenant: str | None = None,
    ) -> Outcome:
        reason = str(error) or type(error).__name__
        log.error(
            "dead letter",
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            reason=reason[:500],
            error_type=type(error).__name__,
            attempts=attempts,
        )
        headers = {name: value.decode(errors="replace") for name, value in message.headers}
        kept_value = message.value if self._redact is None else self._redact(message.value)
        async with self._sessions.begin() as session:
            await record_dead_letter(
                session,
                service=self._service,
                consumer_group=self._group,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=kept_value,
                headers=headers,
                tenant=tenant,
                error_type=type(error).__name__,
                reason=reason,
                attempts=attempts,
            )
        self._count(message, Outcome.DEAD_LETTERED)
        return Outcome.DEAD_LETTERED

    def _count(self, message: IncomingMessage, outcome: Outcome) -> None:
        MESSAGES.labels(self._group, message.topic, outcome.value).inc()


async def record_dead_letter(
    session: AsyncSession | AsyncConnection,
    *,
    service: str,
    consumer_group: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    headers: dict[str, str],
    tenant: str | None,
    error_type: str,
    reason: str,
    attempts: int,
) -> int | None:
    """Keep a message given up on: the whole of it as a row, a bounded record of it on `T.dlq`.

    The event on `T.dlq` (through the outbox, in the caller's transaction) names the row and
    carries an excerpt of the body: never more than a few kilobytes, whatever the message's
    size, so a dead letter can always be published. None when that message was kept already.
    """
    dead_letter_id: int | None = await session.scalar(
        insert(dead_letters)
        .values(
            consumer_group=consumer_group,
            original_topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=headers,
            tenant_id=tenant,
            error_type=error_type,
            reason=reason,
            attempts=attempts,
        )
        .on_conflict_do_nothing()
        .returning(dead_letters.c.id)
    )
    DEAD_LETTERS.labels(topic).inc()
    if dead_letter_id is None or topic.endswith(DLQ_SUFFIX):
        return dead_letter_id
    record = DeadLetter(
        service=service,
        consumer_group=consumer_group,
        dead_letter_id=dead_letter_id,
        original_topic=topic,
        partition=partition,
        offset=offset,
        key=None if key is None else excerpt(key.decode(errors="replace"), 500),
        value_excerpt=excerpt(value.decode(errors="replace")),
        value_bytes=len(value),
        headers={
            excerpt(name, 100): excerpt(text, 200) for name, text in list(headers.items())[:20]
        },
        error_type=error_type,
        reason=excerpt(reason),
        attempts=attempts,
        failed_at=datetime.now(UTC),
    )
    await session.execute(
        sa.insert(outbox).values(
            topic=f"{topic}{DLQ_SUFFIX}",
            key=key,
            value=record.model_dump_json().encode(),
            headers={"stockpit-dead-letter-reason": reason[:200]},
        )
    )
    await session.execute(sa.text(NOTIFY_RELAY))
    return dead_letter_id


class ReplayOutcome(StrEnum):
    REPLAYED = "replayed"
    NOT_FOUND = "not_found"
    ALREADY_REPLAYED = "already_replayed"


async def replay_dead_letter(session: AsyncSession, dead_letter_id: int) -> ReplayOutcome:
    """Put a dead letter's original message back on its topic (through the outbox), once: the
    row is locked, so two concurrent replays publish it once."""
    row = (
        await session.execute(
            sa.select(dead_letters).where(dead_letters.c.id == dead_letter_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        return ReplayOutcome.NOT_FOUND
    if row.replayed_at is not None:
        return ReplayOutcome.ALREADY_REPLAYED
    await session.execute(
        sa.insert(outbox).values(
            topic=row.original_topic, key=row.key, value=row.value, headers=row.headers
        )
    )
    await session.execute(sa.text(NOTIFY_RELAY))
    await session.execute(
        sa.update(dead_letters)
        .where(dead_letters.c.id == dead_letter_id)
        .values(replayed_at=sa.func.now())
    )
    return ReplayOutcome.REPLAYED
