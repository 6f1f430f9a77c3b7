"""The poller's HTTP API: the connection commands of the Kafka topic, for operators and the UI.

Every route needs the `connections:admin` scope for the path's tenant. Routes only translate
HTTP: a command's handler runs in a unit of work the route commits (once: connecting calls
Pennylane), the status is a view."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from stockpit_connections import CompanyMismatch, TokenKeyError
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_runtime.auth import Problem, Scope, SecureRouter

from poller.adapters.clients import PennylaneUnavailable, TokenRefused
from poller.domain.commands import Connect, Disconnect, ImportNow, ImportWhat, Reconnect, Repoint
from poller.entrypoints.service import PollerService
from poller.service_layer import handlers, views

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


async def _status(service: PollerService, tenant_id: str) -> dict[str, Any]:
    syncing_here = tenant_id in service.scheduler.running_tenants
    async with service.uow() as uow:
        status = await views.connection_status(uow, tenant_id, syncing_here=syncing_here)
    if status is None:
        raise HTTPException(404, f"tenant {tenant_id} never connected")
    return status


ADMIN = Scope.CONNECTIONS_ADMIN


def connections_router(service: PollerService) -> SecureRouter:
    router = SecureRouter(prefix="/connections", tags=["connections"])

    @router.put("/{tenant_id}", scope=ADMIN)
    async def connect(tenant_id: TenantId, body: ConnectBody) -> dict[str, Any]:
        """Connect (or give a new token and settings). The token is proved with Pennylane: 422
        when Pennylane refuses it, 409 when it belongs to another company than the tenant's."""
        command = Connect(tenant_id, body.pennylane_token, body.settings)
        try:
            async with service.uow() as uow:
                await handlers.connect(command, uow, service.scheduler.identify_token)
                await uow.commit()
        except REFUSALS as exc:
            raise _refusal(exc) from None
        service.scheduler.wake()
        return await _status(service, tenant_id)

    @router.post("/{tenant_id}/repoint", scope=ADMIN)
    async def repoint(tenant_id: TenantId, body: ConnectBody) -> dict[str, Any]:
        """Move the tenant to the Pennylane company of this token (the operator's explicit
        choice): the poller's watermarks, published versions and snapshots of the tenant are
        reset, and its next sync reads the new company from the start."""
        command = Repoint(tenant_id, body.pennylane_token, body.settings)
        # This replica's sync of the tenant stops first; another replica's is fenced off.
        await service.scheduler.stop_tenant(tenant_id)
        try:
            async with service.uow() as uow:  # its commit wakes the relay
                await handlers.repoint(
                    command,
                    uow,
                    service.scheduler.identify_token,
                    topic_prefix=service.topic_prefix,
                )
                await uow.commit()
        except REFUSALS as exc:
            raise _refusal(exc) from None
        service.scheduler.wake()
        return await _status(service, tenant_id)

    @router.post("/{tenant_id}/disconnect", scope=ADMIN)
    async def disconnect(tenant_id: TenantId) -> dict[str, Any]:
        async with service.uow() as uow:
            await handlers.disconnect(Disconnect(tenant_id), uow)
            await uow.commit()
        # Answer only once this replica's sync of the tenant (if any) has stopped reading.
        await service.scheduler.stop_tenant(tenant_id)
        return await _status(service, tenant_id)

    @router.post("/{tenant_id}/reconnect", scope=ADMIN)
    async def reconnect(tenant_id: TenantId) -> dict[str, Any]:
        try:
            async with service.uow() as uow:
                await handlers.reconnect(
                    Reconnect(tenant_id), uow, service.scheduler.identify_token
                )
                await uow.commit()
        except handlers.UnknownTenant:
            raise HTTPException(404, f"tenant {tenant_id} never connected") from None
        except REFUSALS as exc:
            raise _refusal(exc) from None
        service.scheduler.wake()
        return await _status(service, tenant_id)

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
    async def import_now(tenant_id: TenantId, body: ImportNowBody | None = None) -> dict[str, Any]:
        """Sync at once: 404 when the tenant is not connected, 409 when Pennylane refused its
        token (it needs a new one first)."""
        command = ImportNow(tenant_id, body.what if body is not None else "everything")
        try:
            async with service.uow() as uow:
                await handlers.import_now(command, uow)
                await uow.commit()
        except handlers.UnknownTenant:
            raise HTTPException(404, f"tenant {tenant_id} is not connected") from None
        except handlers.NeedsNewToken as exc:
            raise HTTPException(409, str(exc)) from None
        service.scheduler.wake()
        return await _status(service, tenant_id)

    @router.get("/{tenant_id}", scope=ADMIN)
    async def status(tenant_id: TenantId) -> dict[str, Any]:
        return await _status(service, tenant_id)

    return router


def token_keys_router(service: PollerService) -> SecureRouter:
    router = SecureRouter(prefix="/operations", tags=["operations"])

    @router.post("/rotate-token-keys", scope=Scope.OPERATIONS_ADMIN)
    async def rotate_token_keys() -> dict[str, Any]:
        """Re-encrypt every stored Pennylane token with the newest key of STOCKPIT_TOKEN_KEY
        (the first), bound to its tenant; afterwards the older keys can be removed. All or
        nothing: a token that none of the keys decrypts leaves every row as it was (409)."""
        registry = service.registry
        try:
            rotated = await registry.rotate_keys()
        except TokenKeyError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"rotated": rotated, "keys_configured": registry.key_count}

    return router
