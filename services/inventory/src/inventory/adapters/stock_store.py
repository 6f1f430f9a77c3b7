"""Stock levels and the ledger in PostgreSQL.

`move_levels` moves stock for one transaction's postings with ONE atomic upsert of the touched
levels (rows in sorted key order, so two transactions lock shared rows in the same order and
cannot deadlock; `real = real + delta` so no concurrent update is lost), then lets the domain's
`post_movements` write the ledger entries and stock events of each posting in turn from the
levels before the change; `append_ledger` then appends every entry with ONE `COPY`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_runtime.db import driver_connection
from stockpit_runtime.uuids import random_uuids

from inventory.adapters.orm import stock_ledger, stock_levels
from inventory.domain.stock import (
    NO_EFFECT,
    Effect,
    Posting,
    StockKey,
    StockLevel,
    StockMovement,
    post_movements,
    stock_keys,
)
from inventory.domain.values import TenantId

UPSERT_LEVELS = sa.text(
    """
    INSERT INTO stock_levels AS level (tenant_id, product_id, location_id, real, reserved, incoming)
    SELECT :tenant_id, product_id, location_id, real, reserved, incoming
    FROM unnest(
        CAST(:product_ids AS text[]), CAST(:location_ids AS text[]), CAST(:real AS numeric[]),
        CAST(:reserved AS numeric[]), CAST(:incoming AS numeric[])
    ) WITH ORDINALITY AS moved(product_id, location_id, real, reserved, incoming, position)
    ORDER BY position
    ON CONFLICT (tenant_id, product_id, location_id) DO UPDATE SET
        real = level.real + EXCLUDED.real,
        reserved = level.reserved + EXCLUDED.reserved,
        incoming = level.incoming + EXCLUDED.incoming
    RETURNING product_id, location_id, real, reserved, incoming
    """
)

LEDGER_COLUMNS = (
    "tenant_id",
    "recorded_at",
    "product_id",
    "location_id",
    "delta_real",
    "delta_reserved",
    "delta_incoming",
    "cause",
    "entry_id",
    "cause_kind",
    "subject_id",
    "reference",
    "version",
    "lines",
    "note",
)


async def move_levels(
    session: AsyncSession,
    tenant_id: TenantId,
    postings: Sequence[Sequence[StockMovement]],
    recorded_at: datetime,
) -> list[Posting]:
    """Move the levels by each group of movements, in order, with one atomic upsert; one
    `Posting` (ledger entries, events) per group. `append_ledger` writes the entries."""
    movements = [movement for group in postings for movement in group]
    if not movements:
        return [Posting() for _ in postings]
    totals: dict[StockKey, Effect] = {}
    for movement in movements:
        totals[movement.key] = totals.get(movement.key, NO_EFFECT) + movement.delta
    keys = stock_keys(movements)
    product_ids = [str(key.product_id) for key in keys]
    location_ids = [str(key.location_id) for key in keys]
    key_of_row = dict(zip(zip(product_ids, location_ids, strict=True), keys, strict=True))
    # Array parameters keep the statement text fixed: prepared once, whatever the row count.
    after = await session.execute(
        UPSERT_LEVELS,
        {
            "tenant_id": tenant_id,
            "product_ids": product_ids,
            "location_ids": location_ids,
            "real": [totals[key].real for key in keys],
            "reserved": [totals[key].reserved for key in keys],
            "incoming": [totals[key].incoming for key in keys],
        },
    )
    levels: dict[StockKey, StockLevel] = {}
    for row in after:
        key = key_of_row[row.product_id, row.location_id]
        total = totals[key]
        levels[key] = StockLevel(
            tenant_id,
            key.product_id,
            key.location_id,
            real=row.real - total.real,
            reserved=row.reserved - total.reserved,
            incoming=row.incoming - total.incoming,
        )
    # The levels move along from one posting to the next; the entries' ids made at once.
    new_id = iter(random_uuids(len(movements))).__next__
    return [post_movements(tenant_id, levels, group, recorded_at, new_id) for group in postings]


# What COPY's text format escapes in a value, and its NULL.
_SPECIAL = re.compile(r"[\\\t\n\r]")
NULL = "\\N"


def _copy_text(value: object) -> str:
    """A value in COPY's text format."""
    if value is None:
        return NULL
    text = str(value)
    if _SPECIAL.search(text) is None:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def ledger_copy_text(
    tenant_id: TenantId,
    postings: Sequence[Posting],
    recorded_at: datetime,
    id_text: Callable[[UUID], str] = str,
) -> str:
    """The postings' entries as the rows of a COPY in text format, `LEDGER_COLUMNS` in order.

    Text rather than asyncpg's binary COPY: asyncpg encodes each decimal (three per entry) into
    PostgreSQL's binary numeric in Python-level work, where its text is `str()` and the server
    parses it. A row is written in one piece, and escaped value by value only when a text of
    its (the tenant's, the cause's) holds a character COPY escapes."""
    tenant, at = _copy_text(tenant_id), recorded_at.isoformat()
    plain_tenant = tenant == tenant_id
    rows: list[str] = []
    for posting in postings:
        for entry in posting.entries:
            # Read straight from the entry's movement (its properties would each be a call).
            movement = entry.movement
            key, delta, cause = movement.key, movement.delta, movement.cause
            kind, reference, version, lines, note = (
                cause.kind.value,
                cause.reference,
                cause.version,
                cause.lines,
                cause.note,
            )
            if plain_tenant and _SPECIAL.search(f"{reference}{version}{lines}{note}") is None:
                rows.append(
                    f"{tenant}\t{at}\t{id_text(key.product_id)}\t{id_text(key.location_id)}\t"
                    f"{delta.real}\t{delta.reserved}\t{delta.incoming}\t{kind} {reference}\t"
                    f"{entry.entry_id}\t{kind}\t{id_text(cause.subject_id)}\t{reference}\t"
                    f"{NULL if version is None else version}\t"
                    f"{NULL if lines is None else lines}\t"
                    f"{NULL if note is None else note}\n"
                )
                continue
            values = (
                tenant_id,
                at,
                id_text(key.product_id),
                id_text(key.location_id),
                delta.real,
                delta.reserved,
                delta.incoming,
                f"{kind} {reference}",
                entry.entry_id,
                kind,
                id_text(cause.subject_id),
                reference,
                version,
                lines,
                note,
            )
            rows.append("\t".join(_copy_text(value) for value in values) + "\n")
    return "".join(rows)


async def append_ledger(
    session: AsyncSession,
    tenant_id: TenantId,
    postings: Sequence[Posting],
    recorded_at: datetime,
    id_text: Callable[[UUID], str] = str,
) -> None:
    """Append the postings' entries with one COPY, in posting order (the ledger's ids follow
    it). `id_text` writes a UUID as text (the caller's cache: products, locations and subjects
    recur from line to line)."""
    text = ledger_copy_text(tenant_id, postings, recorded_at, id_text)
    if text:
        driver = await driver_connection(await session.connection())
        # A buffer, not bytes: asyncpg takes bytes for a file's path.
        await driver.copy_to_table(
            "stock_ledger",
            source=memoryview(text.encode()),
            columns=list(LEDGER_COLUMNS),
            format="text",
        )


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
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[LevelRow]:
    """Levels in (product, location) order; `after` a (product, location) key, for paging."""
    query = sa.select(stock_levels).where(stock_levels.c.tenant_id == tenant_id)
    if after is not None:
        query = query.where(
            sa.tuple_(stock_levels.c.product_id, stock_levels.c.location_id) > sa.tuple_(*after)
        )
    if product_id is not None:
        query = query.where(stock_levels.c.product_id == str(product_id))
    if location_id is not None:
        query = query.where(stock_levels.c.location_id == str(location_id))
    query = query.order_by(stock_levels.c.product_id, stock_levels.c.location_id)
    if limit is not None:
        query = query.limit(limit)
    return [
        LevelRow(row.product_id, row.location_id, row.real, row.reserved, row.incoming)
        for row in await session.execute(query)
    ]


async def ledger(
    session: AsyncSession,
    tenant_id: TenantId,
    product_id: UUID,
    *,
    limit: int = 1000,
    before_id: int | None = None,
) -> Sequence[sa.Row[Any]]:
    """A product's ledger entries, newest first; `before_id` continues a previous page."""
    query = (
        sa.select(stock_ledger)
        .where(stock_ledger.c.tenant_id == tenant_id, stock_ledger.c.product_id == str(product_id))
        .order_by(stock_ledger.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(stock_ledger.c.id < before_id)
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
