"""The poller's HTTP API: the connection commands of the Kafka topic, for operators and the UI.

Every route needs the `connections:admin` scope for the path's tenant."""

from __future__ import annotations

import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from stockpit_connections import CompanyMismatch, ConnectionRegistry, TokenKeyError
from stockpit_contracts.payloads.connections import DEFAULT_SYNC_INTERVAL_S, ConnectionSettings
from stockpit_runtime.auth import Problem, Scope, SecureRouter
from stockpit_runtime.service import ServiceRuntime

from poller.adapters.clients import PennylaneUnavailable, TokenRefused
from poller.adapters.orm import tenants
from poller.service_layer import commands
from poller.service_layer.commands import ImportWhat
from poller.service_layer.scheduler import Scheduler

TenantId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]


BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class ConnectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pennylane_token: SecretStr = Field(min_length=8, max_length=500)
    settings: ConnectionSettings = ConnectionSettings()

    @field_validator("pennylane_token")
    @classmethod
    def _bearer_token_characters(cls, token: SecretStr) -> SecretStr:
        # It travels in an Authorization header: RFC 6750's token68 characters only.
        if not BEARER_TOKEN.fullmatch(token.get_secret_value()):
            raise ValueError("a Pennylane token holds only letters, digits and -._~+/ (then =)")
        return token


class ImportNowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    what: ImportWhat = "everything"


def _parts(request: Request) -> tuple[ServiceRuntime, ConnectionRegistry, Scheduler]:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime, runtime.extras["registry"], runtime.extras["scheduler"]


def _identify(request: Request) -> commands.IdentifyToken:
    identify: commands.IdentifyToken = request.app.state.runtime.extras["identify_token"]
    return identify


def _refusal(exc: Exception) -> HTTPException:
    """Why a token was not accepted, as the operator must read it (never the token)."""
    if isinstance(exc, CompanyMismatch):
        return HTTPException(
            409,
            f"{exc} Use POST /connections/{exc.tenant_id}/repoint with the new token to do so.",
        )
    if isinstance(exc, TokenRefused):
        return HTTPException(422, str(exc))
    return HTTPException(503, str(exc))


REFUSALS = (CompanyMismatch, TokenRefused, PennylaneUnavailable)


async def _status(request: Request, tenant_id: str) -> dict[str, Any]:
    runtime, registry, scheduler = _parts(request)
    connection = await registry.get(tenant_id)
    if connection is None:
        raise HTTPException(404, f"tenant {tenant_id} never connected")
    async with runtime.sessions() as session:
        row = (
            await session.execute(
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
        "syncing": tenant_id in scheduler.running_tenants or bool(row and row.lease_owner),
    }


ADMIN = Scope.CONNECTIONS_ADMIN


def connections_router() -> SecureRouter:
    router = SecureRouter(prefix="/connections", tags=["connections"])

    @router.put("/{tenant_id}", scope=ADMIN)
    async def connect(request: Request, tenant_id: TenantId, body: ConnectBody) -> dict[str, Any]:
        """Connect (or give a new token and settings). The token is proved with Pennylane: 422
        when Pennylane refuses it, 409 when it belongs to another company than the tenant's."""
        runtime, registry, scheduler = _parts(request)
        try:
            async with runtime.sessions.begin() as session:
                await commands.connect(
                    session,
                    registry,
                    _identify(request),
                    tenant_id,
                    body.pennylane_token,
                    body.settings,
                )
        except REFUSALS as exc:
            raise _refusal(exc) from None
        scheduler.wake()
        return await _status(request, tenant_id)

    @router.post("/{tenant_id}/repoint", scope=ADMIN)
    async def repoint(request: Request, tenant_id: TenantId, body: ConnectBody) -> dict[str, Any]:
        """Move the tenant to the Pennylane company of this token (the operator's explicit
        choice): the poller's watermarks, published versions and snapshots of the tenant are
        reset, and its next sync reads the new company from the start."""
        runtime, registry, scheduler = _parts(request)
        # This replica's sync of the tenant stops first; another replica's is fenced off.
        await scheduler.stop_tenant(tenant_id)
        try:
            async with runtime.sessions.begin() as session:
                await commands.repoint(
                    session,
                    registry,
                    _identify(request),
                    tenant_id,
                    body.pennylane_token,
                    body.settings,
                    topic_prefix=runtime.settings.topic_prefix,
                )
        except REFUSALS as exc:
            raise _refusal(exc) from None
        runtime.wake_relay()
        scheduler.wake()
        return await _status(request, tenant_id)

    @router.post("/{tenant_id}/disconnect", scope=ADMIN)
    async def disconnect(request: Request, tenant_id: TenantId) -> dict[str, Any]:
        runtime, registry, scheduler = _parts(request)
        async with runtime.sessions.begin() as session:
            await commands.disconnect(session, registry, tenant_id)
        # Answer only once this replica's sync of the tenant (if any) has stopped reading.
        await scheduler.stop_tenant(tenant_id)
        return await _status(request, tenant_id)

    @router.post("/{tenant_id}/reconnect", scope=ADMIN)
    async def reconnect(request: Request, tenant_id: TenantId) -> dict[str, Any]:
        runtime, registry, scheduler = _parts(request)
        try:
            async with runtime.sessions.begin() as session:
                await commands.reconnect(session, registry, _identify(request), tenant_id)
        except commands.UnknownTenant:
            raise HTTPException(404, f"tenant {tenant_id} never connected") from None
        except REFUSALS as exc:
            raise _refusal(exc) from None
        scheduler.wake()
        return await _status(request, tenant_id)

    @router.post(
        "/{tenant_id}/import-now",
        status_code=202,
        scope=ADMIN,
        responses={
            409: {
                "model": Problem,
                "description": "Pennylane refused the tenant's token: connect a new one first",
            }
        },
    )
    async def import_now(
        request: Request, tenant_id: TenantId, body: ImportNowBody | None = None
    ) -> dict[str, Any]:
        """Sync at once: 404 when the tenant is not connected, 409 when Pennylane refused its
        token (it needs a new one first)."""
        runtime, _, scheduler = _parts(request)
        what = body.what if body is not None else "everything"
        try:
            async with runtime.sessions.begin() as session:
                await commands.import_now(session, tenant_id, what)
        except commands.UnknownTenant:
            raise HTTPException(404, f"tenant {tenant_id} is not connected") from None
        except commands.NeedsNewToken as exc:
            raise HTTPException(409, str(exc)) from None
        scheduler.wake()
        return await _status(request, tenant_id)

    @router.get("/{tenant_id}", scope=ADMIN)
    async def status(request: Request, tenant_id: TenantId) -> dict[str, Any]:
        return await _status(request, tenant_id)

    return router


def token_keys_router() -> SecureRouter:
    router = SecureRouter(prefix="/operations", tags=["operations"])

    @router.post("/rotate-token-keys", scope=Scope.OPERATIONS_ADMIN)
    async def rotate_token_keys(request: Request) -> dict[str, Any]:
        """Re-encrypt every stored Pennylane token with the newest key of STOCKPIT_TOKEN_KEY
        (the first), bound to its tenant; afterwards the older keys can be removed. All or
        nothing: a token that none of the keys decrypts leaves every row as it was (409)."""
        _, registry, _ = _parts(request)
        try:
            rotated = await registry.rotate_keys()
        except TokenKeyError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"rotated": rotated, "keys_configured": registry.key_count}

    return router
