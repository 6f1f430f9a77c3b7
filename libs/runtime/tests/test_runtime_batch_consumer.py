"""Batch consumption on a real PostgreSQL server: one transaction per batch, inbox claims per
event, and a fall back to one by one when anything in the batch fails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from stockpit_contracts import Envelope, Payload, new_event
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_runtime.consumer import IncomingMessage, Outcome, PermanentError, ReliableConsumer
from stockpit_runtime.db import session_factory
from stockpit_runtime.messaging_tables import dead_letters

pytestmark = pytest.mark.integration


def _event(pennylane_id: int) -> Envelope[DocumentDeleted]:
    payload = DocumentDeleted(
        kind=DocumentKind.INVOICE, pennylane_id=pennylane_id, deleted_at=datetime.now(UTC)
    )
    return new_event(payload, "tenant-a")


def _messages(*values: bytes) -> list[IncomingMessage]:
    return [
        IncomingMessage(
            topic="documents", partition=0, offset=offset, key=b"t", value=value, headers=()
        )
        for offset, value in enumerate(values)
    ]


async def _effects(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT note FROM effects ORDER BY note"))
        return [row.note for row in rows]


async def _record(session: AsyncSession, event: Envelope[Payload]) -> None:
    payload = event.payload
    assert isinstance(payload, DocumentDeleted)
    await session.execute(
        sa.text("INSERT INTO effects VALUES (:note)"), {"note": str(payload.pennylane_id)}
    )


async def test_a_batch_is_applied_once_and_duplicates_inside_it_are_skipped(
    engine: AsyncEngine,
) -> None:
    transactions = 0

    def committed(_connection: object) -> None:
        nonlocal transactions
        transactions += 1

    sa.event.listen(engine.sync_engine, "commit", committed)
    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")
    first, second = _event(1), _event(2)
    outcomes = await consumer.process_batch(
        _messages(first.to_json(), second.to_json(), first.to_json()), _record
    )
    assert outcomes == [Outcome.HANDLED, Outcome.HANDLED, Outcome.DUPLICATE]
    assert transactions == 1, "one transaction for the whole batch"
    again = await consumer.process_batch(_messages(second.to_json(), _event(3).to_json()), _record)
    assert again == [Outcome.DUPLICATE, Outcome.HANDLED]
    assert await _effects(engine) == ["1", "2", "3"]


async def test_a_failing_event_sends_the_batch_one_by_one_and_only_it_is_dead_lettered(
    engine: AsyncEngine,
) -> None:
    async def handler(session: AsyncSession, event: Envelope[Payload]) -> None:
        await _record(session, event)
        payload = event.payload
        assert isinstance(payload, DocumentDeleted)
        if payload.pennylane_id == 2:
            raise PermanentError("document 2 names an unknown product")

    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")
    events = [_event(n) for n in (1, 2, 3)]
    outcomes = await consumer.process_batch(_messages(*(e.to_json() for e in events)), handler)
    assert outcomes == [Outcome.HANDLED, Outcome.DEAD_LETTERED, Outcome.HANDLED]
    assert await _effects(engine) == ["1", "3"], "the failed batch attempt left nothing behind"
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.select(dead_letters))).all()
    assert [(row.offset, row.reason) for row in rows] == [
        (1, "document 2 names an unknown product")
    ]


async def test_an_undecodable_record_in_a_batch_is_dead_lettered_and_the_rest_applied(
    engine: AsyncEngine,
) -> None:
    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")
    outcomes = await consumer.process_batch(
        _messages(_event(1).to_json(), b"{broken", _event(2).to_json()), _record
    )
    assert outcomes == [Outcome.HANDLED, Outcome.DEAD_LETTERED, Outcome.HANDLED]
    assert await _effects(engine) == ["1", "2"]


async def test_a_batch_handler_gets_the_claimed_events_in_one_call_and_falls_back_per_event(
    engine: AsyncEngine,
) -> None:
    calls: list[list[int]] = []

    async def record_all(session: AsyncSession, events: Sequence[Envelope[Payload]]) -> None:
        ids = [event.payload.pennylane_id for event in events]  # type: ignore[attr-defined]
        calls.append(ids)
        for event in events:
            await _record(session, event)
        if 4 in ids:
            raise RuntimeError("the batch cannot be applied as a whole")

    consumer = ReliableConsumer(session_factory(engine), service="s", consumer_group="g")
    first = _event(1)
    await consumer.process_batch(_messages(first.to_json()), _record)
    outcomes = await consumer.process_batch(
        _messages(first.to_json(), _event(2).to_json(), _event(3).to_json()),
        _record,
        record_all,
    )
    assert outcomes == [Outcome.DUPLICATE, Outcome.HANDLED, Outcome.HANDLED]
    assert calls == [[2, 3]], "one call with the fresh events, in order"
    failing = await consumer.process_batch(
        _messages(_event(4).to_json(), _event(5).to_json()), _record, record_all
    )
    assert failing == [Outcome.HANDLED, Outcome.HANDLED], "applied one by one by the handler"
    assert await _effects(engine) == ["1", "2", "3", "4", "5"]
