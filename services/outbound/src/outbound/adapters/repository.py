"""The outbound schema's write table and its dead letters, for the service layer's unit of work
(reads for the HTTP API are in `service_layer/views.py`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from outbound.adapters.orm import write_dead_letters, writes
from outbound.domain.writes import PennylaneExchange, WriteStatus

REPOINTED = "the tenant was re-pointed to another Pennylane company; this write was for the old one"


class WriteRepository:
    """Writes to Pennylane, one row per request, and the dead letters of those that failed."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record_write(
        self,
        *,
        tenant_id: str,
        entity_kind: str,
        entity_id: str,
        event_id: Any,
        event_type: str,
        envelope: bytes,
        now: dt.datetime,
        traceparent: str | None = None,
    ) -> None:
        await self._session.execute(
            insert(writes)
            .values(
                traceparent=traceparent,
                tenant_id=tenant_id,
                entity_kind=entity_kind,
                entity_id=entity_id,
                event_id=event_id,
                event_type=event_type,
                envelope=envelope,
                status=WriteStatus.PENDING,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["event_id"])
        )

    async def tenants_with_due_writes(self, now: dt.datetime) -> list[str]:
        rows = await self._session.scalars(
            sa.select(writes.c.tenant_id)
            .where(writes.c.status == WriteStatus.PENDING, writes.c.next_attempt_at <= now)
            .distinct()
        )
        return list(rows)

    async def due_heads(self, tenant_id: str, now: dt.datetime, limit: int) -> list[int]:
        """Ids of the oldest pending write of each record of the tenant, those due now, oldest
        first.

        Only a record's oldest pending write may run: a record's writes reach Pennylane in the
        order they were asked for, while one record waiting for a retry does not hold up the
        others.
        """
        heads = (
            sa.select(writes.c.id, writes.c.next_attempt_at)
            .where(writes.c.tenant_id == tenant_id, writes.c.status == WriteStatus.PENDING)
            .order_by(writes.c.entity_kind, writes.c.entity_id, writes.c.id)
            .ext(distinct_on(writes.c.entity_kind, writes.c.entity_id))
            .subquery()
        )
        rows = await self._session.scalars(
            sa.select(heads.c.id)
            .where(heads.c.next_attempt_at <= now)
            .order_by(heads.c.id)
            .limit(limit)
        )
        return list(rows)

    async def claim_pending(self, write_id: int) -> sa.Row[Any] | None:
        return (
            await self._session.execute(
                sa.select(writes)
                .where(writes.c.id == write_id, writes.c.status == WriteStatus.PENDING)
                .with_for_update()
            )
        ).one_or_none()

    async def later_write_done(self, row: sa.Row[Any]) -> bool:
        """Whether a newer write of the same record already reached Pennylane."""
        newer = await self._session.scalar(
            sa.select(sa.func.count())
            .select_from(writes)
            .where(
                writes.c.tenant_id == row.tenant_id,
                writes.c.entity_kind == row.entity_kind,
                writes.c.entity_id == row.entity_id,
                writes.c.id > row.id,
                writes.c.status == WriteStatus.DONE,
            )
        )
        return bool(newer)

    async def last_written_state(self, row: sa.Row[Any]) -> dict[str, Any] | None:
        """What the record's latest done write left in Pennylane, if it kept that."""
        state: dict[str, Any] | None = await self._session.scalar(
            sa.select(writes.c.written_state)
            .where(
                writes.c.tenant_id == row.tenant_id,
                writes.c.entity_kind == row.entity_kind,
                writes.c.entity_id == row.entity_id,
                writes.c.status == WriteStatus.DONE,
                writes.c.written_state.is_not(None),
            )
            .order_by(writes.c.id.desc())
            .limit(1)
        )
        return state

    async def save_progress(
        self, write_id: int, progress: Mapping[str, Any], now: dt.datetime
    ) -> None:
        await self._session.execute(
            sa.update(writes)
            .where(writes.c.id == write_id)
            .values(progress=dict(progress), updated_at=now)
        )

    async def finish(
        self,
        write_id: int,
        status: WriteStatus,
        *,
        attempts: int,
        now: dt.datetime,
        pennylane_id: int | None = None,
        last_error: str | None = None,
        written_state: dict[str, Any] | None = None,
    ) -> None:
        await self._session.execute(
            sa.update(writes)
            .where(writes.c.id == write_id)
            .values(
                status=status,
                attempts=attempts,
                pennylane_id=pennylane_id,
                last_error=last_error,
                written_state=written_state,
                updated_at=now,
            )
        )

    async def schedule_retry(
        self,
        write_id: int,
        *,
        attempts: int,
        at: dt.datetime,
        last_error: str,
        now: dt.datetime,
    ) -> None:
        await self._session.execute(
            sa.update(writes)
            .where(writes.c.id == write_id)
            .values(attempts=attempts, next_attempt_at=at, last_error=last_error, updated_at=now)
        )

    async def add_dead_letter(
        self,
        row: sa.Row[Any],
        *,
        reason: str,
        retryable: bool,
        attempts: int,
        exchange: PennylaneExchange,
        now: dt.datetime,
    ) -> None:
        await self._session.execute(
            sa.insert(write_dead_letters).values(
                write_id=row.id,
                tenant_id=row.tenant_id,
                entity_kind=row.entity_kind,
                entity_id=row.entity_id,
                request=exchange.request,
                response=exchange.response,
                reason=reason,
                retryable=retryable,
                attempts=attempts,
                failed_at=now,
            )
        )

    async def lock_dead_letter(self, dead_letter_id: int) -> sa.Row[Any] | None:
        return (
            await self._session.execute(
                sa.select(write_dead_letters)
                .where(write_dead_letters.c.id == dead_letter_id)
                .with_for_update()
            )
        ).one_or_none()

    async def reopen_write(self, write_id: int, now: dt.datetime) -> bool:
        """A failed write goes back to pending with a fresh attempt budget; its checkpoints stay."""
        reopened = await self._session.scalar(
            sa.update(writes)
            .where(writes.c.id == write_id, writes.c.status == WriteStatus.FAILED)
            .values(
                status=WriteStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                last_error=None,
                updated_at=now,
            )
            .returning(writes.c.id)
        )
        return reopened is not None

    async def mark_replayed(self, dead_letter_id: int, now: dt.datetime) -> None:
        await self._session.execute(
            sa.update(write_dead_letters)
            .where(write_dead_letters.c.id == dead_letter_id)
            .values(replayed_at=now)
        )

    async def forget_pennylane_company(self, tenant_id: str, now: dt.datetime) -> int:
        """The tenant now writes to another Pennylane company, whose ids may be the same numbers:
        its pending writes (which name the old company's records) are superseded, never sent, and
        what done writes remember of the old company's records (the ids created on the way, the
        state they left, for "last change wins") is forgotten. Returns the writes superseded."""
        superseded = await self._session.execute(
            sa.update(writes)
            .where(writes.c.tenant_id == tenant_id, writes.c.status == WriteStatus.PENDING)
            .values(status=WriteStatus.SUPERSEDED, last_error=REPOINTED, updated_at=now)
        )
        await self._session.execute(
            sa.update(writes)
            .where(writes.c.tenant_id == tenant_id)
            .values(progress={}, written_state=sa.null())
        )
        return int(superseded.rowcount)  # type: ignore[attr-defined]
