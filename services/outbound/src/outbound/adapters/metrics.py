"""Outbound's queue as Prometheus sees it (no tenant label: `/outbound/writes` has the detail)."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import Gauge
from stockpit_runtime.service import ServiceRuntime

from outbound.adapters.orm import writes
from outbound.domain.writes import WriteStatus

PENDING_WRITES = Gauge(
    "stockpit_outbound_pending_writes", "Writes to Pennylane waiting to be sent or retried"
)
OLDEST_PENDING_AGE = Gauge(
    "stockpit_outbound_oldest_pending_write_age_seconds",
    "Age of the oldest write still pending (0 when none)",
)


async def collect_pending_writes(runtime: ServiceRuntime) -> None:
    async with runtime.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.coalesce(
                        sa.func.max(
                            sa.extract("epoch", sa.func.clock_timestamp() - writes.c.created_at)
                        ),
                        0,
                    ),
                ).where(writes.c.status == WriteStatus.PENDING)
            )
        ).one()
    PENDING_WRITES.set(row[0])
    OLDEST_PENDING_AGE.set(max(0.0, float(row[1])))
