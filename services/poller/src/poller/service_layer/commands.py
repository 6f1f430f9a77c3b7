"""Connection commands, the same whether they come from Kafka or from the HTTP API.

The registry (its own schema) holds the token and settings; the poller's `tenants` row holds the
schedule. Both writes are idempotent, so a command applied twice (a redelivery) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_connections import ConnectionRegistry
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads.connections import (
    ConnectionSettings,
    ConnectTenant,
    DisconnectTenant,
    ImportNow,
    ReconnectTenant,
)
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_runtime.consumer import PermanentError

from poller.adapters import state
from poller.domain.schedule import IMPORT_NOW_STREAMS

ImportWhat = Literal["invoices", "purchase_orders", "everything"]


class UnknownTenant(LookupError):
    """Reconnect or import-now for a tenant that never connected (or is disconnected)."""


async def connect(
    session: AsyncSession,
    registry: ConnectionRegistry,
    tenant_id: str,
    token: SecretStr,
    settings: ConnectionSettings,
) -> None:
    await registry.connect(tenant_id, token, settings)
    await state.activate_tenant(session, tenant_id, dt.datetime.now(dt.UTC))


async def disconnect(session: AsyncSession, registry: ConnectionRegistry, tenant_id: str) -> None:
    """A running sync sees the registry change before its next page and stops."""
    await registry.disconnect(tenant_id)
    await state.deactivate_tenant(session, tenant_id)


async def reconnect(session: AsyncSession, registry: ConnectionRegistry, tenant_id: str) -> None:
    if await registry.reconnect(tenant_id) is None:
        raise UnknownTenant(tenant_id)
    # The watermarks were kept: the sync resumes from them (or re-scans if they expired).
    await state.activate_tenant(session, tenant_id, dt.datetime.now(dt.UTC))


async def import_now(session: AsyncSession, tenant_id: str, what: ImportWhat) -> None:
    """Sync the named streams at once; the others keep their schedule."""
    streams = IMPORT_NOW_STREAMS[what]
    if not await state.request_sync(session, tenant_id, dt.datetime.now(dt.UTC), streams):
        raise UnknownTenant(tenant_id)


async def follow_settings(
    session: AsyncSession, tenant_id: str, settings: TenantSettingsChanged
) -> None:
    """The tenant's settings as Stockpit holds them: the schedule follows its sync interval."""
    await state.set_sync_interval(
        session, tenant_id, settings.sync_interval_s, dt.datetime.now(dt.UTC)
    )


async def handle_command(
    session: AsyncSession, registry: ConnectionRegistry, event: Envelope[Payload]
) -> None:
    payload = event.payload
    tenant_id = event.tenant_id
    if isinstance(payload, ConnectTenant):
        await connect(session, registry, tenant_id, payload.pennylane_token, payload.settings)
    elif isinstance(payload, DisconnectTenant):
        await disconnect(session, registry, tenant_id)
    elif isinstance(payload, ReconnectTenant):
        await reconnect(session, registry, tenant_id)
    elif isinstance(payload, ImportNow):
        await import_now(session, tenant_id, payload.what)
    else:
        raise PermanentError(f"{type(payload).__name__} is not a connection command")
