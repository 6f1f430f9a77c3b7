"""Writes of the tenant's sync report: problems as emitted, sync runs as the poller reported."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters.orm import problems, sync_runs
from inventory.domain.values import TenantId


async def add_problems(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """One statement for all of a transaction's problems (each row: the problems columns)."""
    if rows:
        await session.execute(sa.insert(problems), list(rows))


async def add_sync_run(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(sa.insert(sync_runs).values(**row))


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
