"""Outbound's reads for the HTTP API: plain queries in a unit of work that is never committed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from outbound.adapters.orm import write_dead_letters, writes
from outbound.domain.writes import WriteStatus
from outbound.service_layer.unit_of_work import UnitOfWork


async def writes_by_status(
    uow: UnitOfWork,
    statuses: Sequence[WriteStatus],
    *,
    tenant_id: str | None,
    limit: int,
    after_id: int | None = None,
) -> list[sa.Row[Any]]:
    query = (
        sa.select(writes).where(writes.c.status.in_(statuses)).order_by(writes.c.id).limit(limit)
    )
    if after_id is not None:
        query = query.where(writes.c.id > after_id)
    if tenant_id is not None:
        query = query.where(writes.c.tenant_id == tenant_id)
    return list((await uow.session.execute(query)).all())


async def dead_letters(
    uow: UnitOfWork,
    *,
    tenant_id: str | None,
    include_replayed: bool,
    limit: int,
    after_id: int | None = None,
) -> list[sa.Row[Any]]:
    query = sa.select(write_dead_letters).order_by(write_dead_letters.c.id).limit(limit)
    if after_id is not None:
        query = query.where(write_dead_letters.c.id > after_id)
    if tenant_id is not None:
        query = query.where(write_dead_letters.c.tenant_id == tenant_id)
    if not include_replayed:
        query = query.where(write_dead_letters.c.replayed_at.is_(None))
    return list((await uow.session.execute(query)).all())
