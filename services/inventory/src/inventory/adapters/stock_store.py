"""Stock levels and the ledger in PostgreSQL.

`post` moves stock for one transaction's movements with ONE atomic upsert of the touched levels
(rows in sorted key order, so two transactions lock shared rows in the same order and cannot
deadlock; `real = real + delta` so no concurrent update is lost), then lets the domain's
`post_movements` write the ledger entries and stock events from the levels before the change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters.orm import stock_ledger, stock_levels
from inventory.domain.stock import (
    Effect,
    Posting,
    StockKey,
    StockLevel,
    StockMovement,
    post_movements,
    stock_keys,
)
from inventory.domain.values import TenantId


async def post(
    session: AsyncSession,
    tenant_id: TenantId,
    movements: Sequence[StockMovement],
    recorded_at: datetime,
) -> Posting:
    if not movements:
        return Posting()
    totals: dict[StockKey, Effect] = {}
    for movement in movements:
        totals[movement.key] = totals.get(movement.key, Effect()) + movement.delta
    rows = [
        {
            "tenant_id": tenant_id,
            "product_id": str(key.product_id),
            "location_id": str(key.location_id),
            "real": totals[key].real,
            "reserved": totals[key].reserved,
            "incoming": totals[key].incoming,
        }
        for key in stock_keys(movements)
    ]
    upsert = insert(stock_levels).values(rows)
    after = await session.execute(
        upsert.on_conflict_do_update(
            index_elements=[
                stock_levels.c.tenant_id,
                stock_levels.c.product_id,
                stock_levels.c.location_id,
            ],
            set_={
                "real": stock_levels.c.real + upsert.excluded.real,
                "reserved": stock_levels.c.reserved + upsert.excluded.reserved,
                "incoming": stock_levels.c.incoming + upsert.excluded.incoming,
            },
        ).returning(
            stock_levels.c.product_id,
            stock_levels.c.location_id,
            stock_levels.c.real,
            stock_levels.c.reserved,
            stock_levels.c.incoming,
        )
    )
    levels: dict[StockKey, StockLevel] = {}
    for row in after:
        key = StockKey(UUID(row.product_id), UUID(row.location_id))
        total = totals[key]
        levels[key] = StockLevel(
            tenant_id,
            key.product_id,
            key.location_id,
            real=row.real - total.real,
            reserved=row.reserved - total.reserved,
            incoming=row.incoming - total.incoming,
        )
    posting = post_movements(tenant_id, levels, movements, recorded_at)
    await session.execute(
        sa.insert(stock_ledger),
        [
            {
                "tenant_id": tenant_id,
                "product_id": str(entry.product_id),
                "location_id": str(entry.location_id),
                "delta_real": entry.real_delta,
                "delta_reserved": entry.reserved_delta,
                "delta_incoming": entry.incoming_delta,
                "cause": f"{entry.cause_kind.value} {entry.reference}",
                "recorded_at": entry.recorded_at,
                "entry_id": entry.entry_id,
                "cause_kind": entry.cause_kind.value,
                "subject_id": str(entry.subject_id),
                "reference": entry.reference,
                "version": entry.version,
                "lines": entry.lines,
                "note": entry.note,
            }
            for entry in posting.entries
        ],
    )
    return posting


@dataclass(frozen=True)
class LevelRow:
    product_id: str
    location_id: str
    real: Decimal
    reserved: Decimal
    incoming: Decimal

    @property
    def available(self) -> Decimal:
        return self.real - self.reserved


async def levels(
    session: AsyncSession,
    tenant_id: TenantId,
    *,
    product_id: UUID | None = None,
    location_id: UUID | None = None,
) -> list[LevelRow]:
    query = sa.select(stock_levels).where(stock_levels.c.tenant_id == tenant_id)
    if product_id is not None:
        query = query.where(stock_levels.c.product_id == str(product_id))
    if location_id is not None:
        query = query.where(stock_levels.c.location_id == str(location_id))
    query = query.order_by(stock_levels.c.product_id, stock_levels.c.location_id)
    return [
        LevelRow(row.product_id, row.location_id, row.real, row.reserved, row.incoming)
        for row in await session.execute(query)
    ]


async def ledger(
    session: AsyncSession, tenant_id: TenantId, product_id: UUID, *, limit: int = 1000
) -> Sequence[sa.Row[Any]]:
    query = (
        sa.select(stock_ledger)
        .where(stock_ledger.c.tenant_id == tenant_id, stock_ledger.c.product_id == str(product_id))
        .order_by(stock_ledger.c.id)
        .limit(limit)
    )
    return (await session.execute(query)).all()


@dataclass(frozen=True)
class Mismatch:
    product_id: str
    location_id: str
    level: Effect
    ledger: Effect


async def reconcile(session: AsyncSession, tenant_id: TenantId) -> list[Mismatch]:
    """Rule 6 checked in the database: every level against the sum of its ledger entries."""
    sums = (
        sa.select(
            stock_ledger.c.product_id,
            stock_ledger.c.location_id,
            sa.func.sum(stock_ledger.c.delta_real).label("real"),
            sa.func.sum(stock_ledger.c.delta_reserved).label("reserved"),
            sa.func.sum(stock_ledger.c.delta_incoming).label("incoming"),
        )
        .where(stock_ledger.c.tenant_id == tenant_id)
        .group_by(stock_ledger.c.product_id, stock_ledger.c.location_id)
        .subquery()
    )
    current = sa.select(stock_levels).where(stock_levels.c.tenant_id == tenant_id).subquery()
    zero = sa.literal(Decimal(0))
    query = sa.select(
        sa.func.coalesce(current.c.product_id, sums.c.product_id).label("product_id"),
        sa.func.coalesce(current.c.location_id, sums.c.location_id).label("location_id"),
        sa.func.coalesce(current.c.real, zero).label("level_real"),
        sa.func.coalesce(current.c.reserved, zero).label("level_reserved"),
        sa.func.coalesce(current.c.incoming, zero).label("level_incoming"),
        sa.func.coalesce(sums.c.real, zero).label("ledger_real"),
        sa.func.coalesce(sums.c.reserved, zero).label("ledger_reserved"),
        sa.func.coalesce(sums.c.incoming, zero).label("ledger_incoming"),
    ).select_from(
        current.join(
            sums,
            sa.and_(
                current.c.product_id == sums.c.product_id,
                current.c.location_id == sums.c.location_id,
            ),
            full=True,
        )
    )
    mismatches: list[Mismatch] = []
    for row in await session.execute(query):
        level = Effect(row.level_real, row.level_reserved, row.level_incoming)
        summed = Effect(row.ledger_real, row.ledger_reserved, row.ledger_incoming)
        if level != summed:
            mismatches.append(Mismatch(row.product_id, row.location_id, level, summed))
    return sorted(mismatches, key=lambda m: (m.product_id, m.location_id))
