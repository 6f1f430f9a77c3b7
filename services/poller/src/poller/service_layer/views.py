"""The poller's reads for its HTTP API (cosmicpython's views): in a unit of work never
committed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from stockpit_contracts.payloads.connections import DEFAULT_SYNC_INTERVAL_S

from poller.adapters.orm import tenants
from poller.service_layer.unit_of_work import UnitOfWork


async def connection_status(
    uow: UnitOfWork, tenant_id: str, *, syncing_here: bool
) -> dict[str, Any] | None:
    """The tenant's connection and schedule as an operator reads them; None when it never
    connected. `syncing_here`: this replica is syncing it now."""
    connection = await uow.connections.get(tenant_id)
    if connection is None:
        return None
    row = (
        await uow.session.execute(
            sa.select(
                tenants.c.next_due_at,
                tenants.c.requested_at,
                tenants.c.last_success_at,
                tenants.c.last_error,
                tenants.c.lease_owner,
                tenants.c.sync_interval_s,
                tenants.c.token_rejected_at,
            ).where(tenants.c.tenant_id == tenant_id)
        )
    ).first()
    return {
        "tenant_id": tenant_id,
        "status": connection.status.value,
        "pennylane_company": None
        if connection.company is None
        else {"id": connection.company.id, "name": connection.company.name},
        # The connection's own interval is not acted on: the one followed is Stockpit's.
        "settings": connection.settings.model_dump(mode="json", exclude={"sync_interval_s"}),
        "sync_interval_s": (
            row.sync_interval_s
            if row is not None and row.sync_interval_s is not None
            else DEFAULT_SYNC_INTERVAL_S
        ),
        "connected_at": connection.connected_at,
        "disconnected_at": connection.disconnected_at,
        "next_sync_at": row.next_due_at if row else None,
        "import_requested_at": row.requested_at if row else None,
        "last_successful_sync_at": row.last_success_at if row else None,
        "last_error": row.last_error if row else None,
        # Pennylane refused the token: nothing is read for the tenant until a new one is given.
        "needs_new_token": connection.needs_new_token,
        "token_rejected_at": row.token_rejected_at if row else None,
        "syncing": syncing_here or bool(row and row.lease_owner),
    }
