"""Handlers of connection commands (`domain.commands`), the same whether they come from Kafka
or from the HTTP API: functions of (command, unit of work), with the Pennylane identity check
(`IdentifyToken`) given to those that prove a token.

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

from pydantic import SecretStr
from stockpit_connections import PennylaneCompany
from stockpit_contracts.events import new_event
from stockpit_contracts.payloads.connections import ConnectionRepointed, ConnectionSettings
from stockpit_contracts.topics import CONNECTION_EVENTS, partition_key
from stockpit_runtime.outbox import add_to_outbox

from poller.adapters import state
from poller.domain.commands import (
    Connect,
    Disconnect,
    FollowSettings,
    ImportNow,
    Reconnect,
    Repoint,
)
from poller.domain.schedule import IMPORT_NOW_STREAMS
from poller.service_layer.unit_of_work import UnitOfWork

# Who a token belongs to, as Pennylane says: (tenant, token, the poller's rate share) -> company;
# raises TokenRefused or PennylaneUnavailable.
IdentifyToken = Callable[[str, SecretStr, Decimal], Awaitable[PennylaneCompany]]


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


async def connect(command: Connect, uow: UnitOfWork, identify: IdentifyToken) -> PennylaneCompany:
    """Raises CompanyMismatch when the tenant is pinned to another company than the token's."""
    tenant_id, registry = command.tenant_id, uow.connections
    company = await identify(tenant_id, command.token, command.settings.poller_rate_share)
    known = await registry.get(tenant_id)
    kept = None if known is None else known.settings.documents_since
    settings = with_documents_since(command.settings, kept)
    await registry.connect(tenant_id, command.token, settings, company=company)
    await state.activate_tenant(uow.session, tenant_id, dt.datetime.now(dt.UTC))
    return company


async def repoint(
    command: Repoint, uow: UnitOfWork, identify: IdentifyToken, *, topic_prefix: str = ""
) -> PennylaneCompany:
    """Move the tenant to the token's company, whatever it was pinned to, and start its sync
    over: the poller forgets the old company's watermarks, published versions and snapshots
    (any running sync of it is fenced off by the lease version), and tells inventory and
    outbound (`ConnectionRepointed`, in the same transaction) to forget their Pennylane ids."""
    tenant_id, registry = command.tenant_id, uow.connections
    company = await identify(tenant_id, command.token, command.settings.poller_rate_share)
    known = await registry.get(tenant_id)
    previous = None if known is None or known.company is None else known.company.id
    await state.reset_tenant(uow.session, tenant_id)
    # The new company's documents count from the day it was connected, as on a first connect.
    settings = with_documents_since(command.settings, None)
    repointed = ConnectionRepointed(
        pennylane_company_id=company.id, previous_pennylane_company_id=previous
    )
    await add_to_outbox(
        uow.session,
        CONNECTION_EVENTS.name(topic_prefix),
        partition_key(tenant_id),
        [new_event(repointed, tenant_id)],
    )
    await registry.connect(tenant_id, command.token, settings, company=company, repoint=True)
    await state.activate_tenant(uow.session, tenant_id, dt.datetime.now(dt.UTC))
    return company


async def disconnect(command: Disconnect, uow: UnitOfWork) -> None:
    """A running sync sees the registry change before its next page and stops."""
    await uow.connections.disconnect(command.tenant_id)
    await state.deactivate_tenant(uow.session, command.tenant_id)


async def reconnect(command: Reconnect, uow: UnitOfWork, identify: IdentifyToken) -> None:
    """The stored token is proved again (it may have been revoked, or the tenant connected
    before tokens were proved: then it is pinned now)."""
    tenant_id, registry = command.tenant_id, uow.connections
    known = await registry.get(tenant_id)
    if known is None:
        raise UnknownTenant(tenant_id)
    token = await registry.token_for(tenant_id, connected_only=False)
    share = known.settings.poller_rate_share
    await registry.pin(tenant_id, await identify(tenant_id, token, share))
    if await registry.reconnect(tenant_id) is None:
        raise UnknownTenant(tenant_id)
    # The watermarks were kept: the sync resumes from them (or re-scans if they expired).
    await state.activate_tenant(uow.session, tenant_id, dt.datetime.now(dt.UTC))


async def import_now(command: ImportNow, uow: UnitOfWork) -> None:
    """Sync the named streams at once; the others keep their schedule."""
    streams = IMPORT_NOW_STREAMS[command.what]
    if not await state.request_sync(
        uow.session, command.tenant_id, dt.datetime.now(dt.UTC), streams
    ):
        if await state.token_rejected_at(uow.session, command.tenant_id) is not None:
            raise NeedsNewToken(command.tenant_id)
        raise UnknownTenant(command.tenant_id)


async def follow_settings(command: FollowSettings, uow: UnitOfWork) -> None:
    """The tenant's settings as Stockpit holds them: the schedule follows its sync interval."""
    await state.set_sync_interval(
        uow.session, command.tenant_id, command.sync_interval_s, dt.datetime.now(dt.UTC)
    )
