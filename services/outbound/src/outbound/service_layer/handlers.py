"""Outbound's handlers: functions of (command, unit of work), run in an open unit of work that
their caller commits (a Kafka consumer's transaction, or `run_in_transaction` for HTTP)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from outbound.domain.commands import ForgetPennylaneCompany, ReplayDeadLetter, StoreWrite
from outbound.service_layer.unit_of_work import UnitOfWork


async def store_write(command: StoreWrite, uow: UnitOfWork) -> None:
    """Store the request as a pending write; the write worker sends it. Stored once per event."""
    await uow.writes.record_write(
        tenant_id=command.tenant_id,
        entity_kind=command.entity_kind,
        entity_id=command.entity_id,
        event_id=command.event_id,
        event_type=command.event_type,
        envelope=command.envelope,
        now=dt.datetime.now(dt.UTC),
        traceparent=command.traceparent,
    )


async def forget_pennylane_company(command: ForgetPennylaneCompany, uow: UnitOfWork) -> None:
    """A tenant re-pointed to another Pennylane company: forget the old company's ids."""
    await uow.writes.forget_pennylane_company(command.tenant_id, dt.datetime.now(dt.UTC))


class ReplayResult(StrEnum):
    REPLAYED = "replayed"
    NOT_FOUND = "not_found"
    ALREADY_REPLAYED = "already_replayed"


async def replay_dead_letter(command: ReplayDeadLetter, uow: UnitOfWork) -> ReplayResult:
    """A dead-lettered write goes back to pending, at the head of its record, with a fresh
    attempt budget."""
    letter = await uow.writes.lock_dead_letter(command.dead_letter_id)
    if letter is None:
        return ReplayResult.NOT_FOUND
    now = dt.datetime.now(dt.UTC)
    if letter.replayed_at is not None or not await uow.writes.reopen_write(letter.write_id, now):
        return ReplayResult.ALREADY_REPLAYED
    await uow.writes.mark_replayed(command.dead_letter_id, now)
    return ReplayResult.REPLAYED
