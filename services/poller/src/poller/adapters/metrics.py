"""Prometheus metrics of the poller. No tenant label: series must not grow with tenants (the
HTTP API shows each tenant's last sync and error). Pennylane requests are counted by
`stockpit_runtime.operations.pennylane_request_hook`."""

from __future__ import annotations

import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from stockpit_runtime.service import ServiceRuntime

from poller.adapters.orm import tenants

DOCUMENTS_READ = Counter(
    "stockpit_poller_documents_read_total", "Pennylane records read", ["stream"]
)
EVENTS_PUBLISHED = Counter(
    "stockpit_poller_events_published_total",
    "Events committed to the outbox (the relay then publishes them with acks=all)",
    ["stream"],
)
SYNCS = Counter("stockpit_poller_syncs_total", "Tenant syncs by outcome", ["outcome"])
SYNC_LAG_MAX = Gauge(
    "stockpit_poller_sync_lag_max_seconds",
    "The largest time since a connected tenant's last successful sync (or since it connected,"
    " before its first), across tenants",
)
TENANTS = Gauge("stockpit_poller_tenants", "Connected tenants (syncing on schedule)")
NEEDS_NEW_TOKEN = Gauge(
    "stockpit_poller_connections_needing_new_token",
    "Connected tenants whose token Pennylane refused (401/403): not synced until a new token",
)


async def collect_sync_lag(runtime: ServiceRuntime) -> None:
    """A tenant waiting for a new token is counted apart: its lag grows by design until then."""
    waiting = tenants.c.token_rejected_at.is_not(None)
    async with runtime.engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(
                    sa.func.count().filter(~waiting),
                    sa.func.count().filter(waiting),
                    sa.func.coalesce(
                        sa.func.max(
                            sa.extract(
                                "epoch",
                                sa.func.clock_timestamp()
                                - sa.func.coalesce(
                                    tenants.c.last_success_at, tenants.c.last_started_at
                                ),
                            )
                        ).filter(~waiting),
                        0,
                    ),
                ).where(tenants.c.active)
            )
        ).one()
    TENANTS.set(row[0])
    NEEDS_NEW_TOKEN.set(row[1])
    SYNC_LAG_MAX.set(max(0.0, float(row[2])))
