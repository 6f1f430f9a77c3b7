"""Writes of the tenant's sync report: problems as emitted, sync runs as the poller reported."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters.orm import problems, sync_runs
from inventory.domain.values import TenantId

NEGATIVE_STOCK = "negative_stock"

# An open negative-stock problem of a product at a location is one row: a movement that pushes
# it further down updates it (latest reason and document, one more occurrence), so a long
# history of sales from zero makes one problem per product and location, not one per line.
UPSERT_NEGATIVE_STOCK = sa.text(
    """
    INSERT INTO problems (tenant_id, kind, reported_at, reason, subject_kind, subject_id,
                          product_id, location_id, document_reference, occurrences)
    SELECT :tenant_id, 'negative_stock', :reported_at, r.reason, 'product', r.product_id,
           r.product_id, r.location_id, r.reference, r.n
    FROM unnest(CAST(:reasons AS text[]), CAST(:product_ids AS text[]),
                CAST(:location_ids AS text[]), CAST(:references AS text[]),
                CAST(:counts AS bigint[])) AS r(reason, product_id, location_id, reference, n)
    ON CONFLICT (tenant_id, product_id, location_id)
        WHERE kind = 'negative_stock' AND acknowledged_at IS NULL
    DO UPDATE SET reported_at = EXCLUDED.reported_at, reason = EXCLUDED.reason,
                  document_reference = EXCLUDED.document_reference,
                  occurrences = problems.occurrences + EXCLUDED.occurrences
    """
)


async def add_problems(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Keep a transaction's problems (each row: the problems columns): negative stock in one
    upsert (the latest per product and location), the others in one insert."""
    negative: dict[tuple[str, str, str], tuple[dict[str, Any], int]] = {}
    others: list[dict[str, Any]] = []
    for row in rows:
        if row["kind"] == NEGATIVE_STOCK and row["product_id"] and row["location_id"]:
            key = (row["tenant_id"], row["product_id"], row["location_id"])
            negative[key] = (row, negative[key][1] + 1 if key in negative else 1)
        else:
            others.append(row)
    if others:
        await session.execute(sa.insert(problems), others)
    by_tenant: dict[str, list[tuple[dict[str, Any], int]]] = {}
    # Rows in key order, as the levels' upsert takes them: concurrent writers never deadlock.
    for key in sorted(negative):
        by_tenant.setdefault(key[0], []).append(negative[key])
    for tenant_id, latest in by_tenant.items():
        await session.execute(
            UPSERT_NEGATIVE_STOCK,
            {
                "tenant_id": tenant_id,
                "reported_at": latest[-1][0]["reported_at"],
                "reasons": [row["reason"] for row, _ in latest],
                "product_ids": [row["product_id"] for row, _ in latest],
                "location_ids": [row["location_id"] for row, _ in latest],
                "references": [row["document_reference"] for row, _ in latest],
                "counts": [count for _, count in latest],
            },
        )


async def add_sync_run(session: AsyncSession, row: dict[str, Any], *, keep_after: datetime) -> None:
    """Keep a run; the tenant's runs that ended before `keep_after` are forgotten."""
    await session.execute(sa.insert(sync_runs).values(**row))
    await session.execute(
        sa.delete(sync_runs).where(
            sync_runs.c.tenant_id == row["tenant_id"], sync_runs.c.finished_at < keep_after
        )
    )


async def acknowledge_open(
    session: AsyncSession, tenant_id: TenantId, kind: str, at: datetime
) -> None:
    """Marks every open problem of this kind acknowledged (the cause went away)."""
    await session.execute(
        sa.update(problems)
        .where(
            problems.c.tenant_id == tenant_id,
            problems.c.kind == kind,
            problems.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=at)
    )


async def acknowledge(
    session: AsyncSession, tenant_id: TenantId, problem_id: int, at: datetime
) -> bool | None:
    """Marks the problem acknowledged (kept when it already was): True if it was open, False
    if already acknowledged, None if the tenant has no such problem."""
    acknowledged = await session.scalar(
        sa.update(problems)
        .where(
            problems.c.tenant_id == tenant_id,
            problems.c.problem_id == problem_id,
            problems.c.acknowledged_at.is_(None),
        )
        .values(acknowledged_at=at)
        .returning(problems.c.problem_id)
    )
    if acknowledged is not None:
        return True
    exists = await session.scalar(
        sa.select(problems.c.problem_id).where(
            problems.c.tenant_id == tenant_id, problems.c.problem_id == problem_id
        )
    )
    return None if exists is None else False
