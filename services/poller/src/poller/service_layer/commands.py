"""Connection commands, the same whether they come from Kafka or from the HTTP API.

The registry (its own schema) holds the token and settings; the poller's `tenants` row holds the
schedule. Both writes are idempotent, so a command applied twice (a redelivery) changes nothing.

Connecting proves the token: connect, reconnect and re-point ask Pennylane who the token belongs
to (`GET /me`) and the tenant is pinned to that company; a token of another company is refused
(`CompanyMismatch`) unless the operator re-points the tenant, which also resets what the poller
kept of the old company (watermarks, published versions, snapshots).

Connect and re-point carry a token, so they are HTTP-only: a `connection.connect` command on
Kafka is refused (its token, redacted, goes to the dead letters), so no token ever sits in a
topic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Literal

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_connections import (
    CompanyMismatch,
    ConnectionRegistry,
    PennylaneCompany,
)
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.events import new_event
from stockpit_contracts.payloads.connections import (
    ConnectionRepointed,
    ConnectionSettings,
    ConnectTenant,
    DisconnectTenant,
    ImportNow,
    ReconnectTenant,
)
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.topics import CONNECTION_EVENTS, partition_key
from stockpit_runtime.consumer import PermanentError
from stockpit_runtime.outbox import add_to_outbox

from poller.adapters import state
from poller.adapters.clients import TokenRefused
from poller.domain.schedule import IMPORT_NOW_STREAMS

ImportWhat = Literal["invoices", "purchase_orders", "everything"]


# Who a token belongs to, as Pennylane says: (tenant, token, the poller's rate share) -> company;
# raises TokenRefused or PennylaneUnavailable.
IdentifyToken = Callable[[str, SecretStr, Decimal], Awaitable[PennylaneCompany]]

KAFKA_CONNECT_REFUSED = (
    "connect is HTTP-only (PUT /connections/{tenant}) so that no Pennylane token is ever kept in "
    "a Kafka topic; this command was not applied and its token was not stored"
)


class UnknownTenant(LookupError):
    """Reconnect or import-now for a tenant that never connected (or is disconnected)."""


class NeedsNewToken(Exception):
    """Import-now for a tenant whose token Pennylane refused: nothing is read until a new one."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(
            f"Pennylane refused tenant {tenant_id}'s token: nothing is read from Pennylane for it "
            f"until it is connected with a new token (PUT /connections/{tenant_id}, or "
            "`stockpit connect`); its sync then resumes where it stopped"
        )
        self.tenant_id = tenant_id


def with_documents_since(settings: ConnectionSettings, kept: dt.date | None) -> ConnectionSettings:
    """Documents count from the day the tenant connected (UTC), unless an earlier (or later)
    day is given (rule 17: opening stock comes from a count, not from all of history). A new
    token for a connected tenant keeps the day it first connected."""
    if settings.documents_since is not None:
        return settings
    since = kept if kept is not None else dt.datetime.now(dt.UTC).date()
    return settings.model_copy(update={"documents_since": since})


async def connect(
    session: AsyncSession,
    registry: ConnectionRegistry,
    identify: IdentifyToken,
    tenant_id: str,
    token: SecretStr,
    settings: ConnectionSettings,
) -> PennylaneCompany:
    """Raises CompanyMismatch when the tenant is pinned to another company than the token's."""
    company = await identify(tenant_id, token, settings.poller_rate_share)
    known = await registry.get(tenant_id)
    kept = None if known is None else known.settings.documents_since
    settings = with_documents_since(settings, kept)
    await registry.connect(tenant_id, token, settings, company=company)
    await state.activate_tenant(session, tenant_id, dt.datetime.now(dt.UTC))
    return company


async def repoint(
    session: AsyncSession,
    registry: ConnectionRegistry,
    identify: IdentifyToken,
    tenant_id: str,
    token: SecretStr,
    settings: ConnectionSettings,
    *,
    topic_prefix: str = "",
) -> PennylaneCompany:
    """Move the tenant to the token's company, whatever it was pinned to, and start its sync
    over: the poller forgets the old company's watermarks, published versions and snapshots
    (any running sync of it is fenced off by the lease version), and tells inventory and
    outbound (`ConnectionRepointed`, in the same transaction) to forget their Pennylane ids."""
    company = await identify(tenant_id, token, settings.poller_rate_share)
    known = await registry.get(tenant_id)
    previous = None if known is None or known.company is None else known.company.id
    await state.reset_tenant(session, tenant_id)
    # The new company's documents count from the day it was connected, as on a first connect.
    settings = with_documents_since(settings, None)
    repointed = ConnectionRepointed(
        pennylane_company_id=company.id, previous_pennylane_company_id=previous
    )
    await add_to_outbox(
        session,
        CONNECTION_EVENTS.name(topic_prefix),
        partition_key(tenant_id),
        [new_event(repointed, tenant_id)],
    )
    await registry.connect(tenant_id, token, settings, company=company, repoint=True)
    await state.activate_tenant(session, tenant_id, dt.datetime.now(dt.UTC))
    return company


async def disconnect(session: AsyncSession, registry: ConnectionRegistry, tenant_id: str) -> None:
    """A running sync sees the registry change before its next page and stops."""
    await registry.disconnect(tenant_id)
    await state.deactivate_tenant(session, tenant_id)


async def reconnect(
    session: AsyncSession, registry: ConnectionRegistry, identify: IdentifyToken, tenant_id: str
) -> None:
    """The stored token is proved again (it may have been revoked, or the tenant connected
    before tokens were proved: then it is pinned now)."""
    known = await registry.get(tenant_id)
    if known is None:
        raise UnknownTenant(tenant_id)
    token = await registry.token_for(tenant_id, connected_only=False)
    share = known.settings.poller_rate_share
    await registry.pin(tenant_id, await identify(tenant_id, token, share))
    if await registry.reconnect(tenant_id) is None:
        raise UnknownTenant(tenant_id)
    # The watermarks were kept: the sync resumes from them (or re-scans if they expired).
    await state.activate_tenant(session, tenant_id, dt.datetime.now(dt.UTC))


async def import_now(session: AsyncSession, tenant_id: str, what: ImportWhat) -> None:
    """Sync the named streams at once; the others keep their schedule."""
    streams = IMPORT_NOW_STREAMS[what]
    if not await state.request_sync(session, tenant_id, dt.datetime.now(dt.UTC), streams):
        if await state.token_rejected_at(session, tenant_id) is not None:
            raise NeedsNewToken(tenant_id)
        raise UnknownTenant(tenant_id)


async def follow_settings(
    session: AsyncSession, tenant_id: str, settings: TenantSettingsChanged
) -> None:
    """The tenant's settings as Stockpit holds them: the schedule follows its sync interval."""
    await state.set_sync_interval(
        session, tenant_id, settings.sync_interval_s, dt.datetime.now(dt.UTC)
    )


async def handle_command(
    session: AsyncSession,
    registry: ConnectionRegistry,
    identify: IdentifyToken,
    event: Envelope[Payload],
) -> None:
    payload = event.payload
    tenant_id = event.tenant_id
    if isinstance(payload, ConnectTenant):
        raise PermanentError(KAFKA_CONNECT_REFUSED)
    if isinstance(payload, DisconnectTenant):
        await disconnect(session, registry, tenant_id)
    elif isinstance(payload, ReconnectTenant):
        try:
            await reconnect(session, registry, identify, tenant_id)
        except (CompanyMismatch, TokenRefused) as exc:
            raise PermanentError(str(exc)) from None
    elif isinstance(payload, ImportNow):
        try:
            await import_now(session, tenant_id, payload.what)
        except NeedsNewToken as exc:
            raise PermanentError(str(exc)) from None
    else:
        raise PermanentError(f"{type(payload).__name__} is not a connection command")
