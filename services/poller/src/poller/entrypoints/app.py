"""The poller process: connection commands (HTTP; disconnect, reconnect and import-now also on
Kafka), tenant settings from Stockpit, the sync scheduler (its outbox relay runs beside it). Its
own parts (registry, scheduler) are the typed fields of `PollerService`."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from pydantic import Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_connections import CompanyMismatch, TokenCipher, migrate
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads.connections import (
    ConnectTenant,
    DisconnectTenant,
    ReconnectTenant,
    redact_connection_command,
)
from stockpit_contracts.payloads.connections import ImportNow as ImportNowPayload
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.topics import (
    CONNECTION_COMMANDS,
    CONNECTION_EVENTS,
    INVENTORY_SETTINGS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    POLLER_SYNC_RUNS,
)
from stockpit_pennylane.client import DEFAULT_BASE_URL
from stockpit_runtime.consumer import EventHandler, PermanentError
from stockpit_runtime.operations import add_collector
from stockpit_runtime.service import ServiceRuntime, create_service_app, serve
from stockpit_runtime.settings import ServiceSettings

from poller.adapters.clients import TokenRefused
from poller.adapters.metrics import collect_sync_lag
from poller.domain.commands import Disconnect, FollowSettings, ImportNow, Reconnect
from poller.entrypoints.api import connections_router, token_keys_router
from poller.entrypoints.service import PollerService
from poller.service_layer import handlers
from poller.service_layer.scheduler import SchedulerConfig
from poller.service_layer.sync import SyncLimits

MIGRATIONS = Path(__file__).resolve().parents[1] / "adapters" / "migrations"


def _replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class PollerSettings(ServiceSettings):
    service_name: str = "poller"
    http_port: int = 8010
    # STOCKPIT_TOKEN_KEY: Fernet key(s) of the connection registry (see stockpit_connections).
    token_key: SecretStr = SecretStr("")
    connections_schema: str = Field(default="connections", pattern=r"^[a-z_][a-z0-9_]*$")
    pennylane_base_url: str = DEFAULT_BASE_URL
    replica_id: str = Field(default_factory=_replica_id)
    lease_ttl_s: float = Field(default=30.0, gt=0.5, le=3600)
    scheduler_tick_s: float = Field(default=1.0, gt=0, le=60)
    # Syncs mostly wait on Pennylane (each token paced on its own), so many run at once.
    max_concurrent_syncs: int = Field(default=32, ge=1, le=1000)
    page_size: int = Field(default=100, ge=1, le=100)
    changelog_page_size: int = Field(default=1000, ge=1, le=1000)
    purchase_order_window: int = Field(default=200, ge=1, le=10_000)


KAFKA_CONNECT_REFUSED = (
    "connect is HTTP-only (PUT /connections/{tenant}) so that no Pennylane token is ever kept in "
    "a Kafka topic; this command was not applied and its token was not stored"
)


def connection_command_of(event: Envelope[Payload]) -> Disconnect | Reconnect | ImportNow:
    """The command a message of the connection-commands topic carries."""
    payload, tenant_id = event.payload, event.tenant_id
    if isinstance(payload, ConnectTenant):
        raise PermanentError(KAFKA_CONNECT_REFUSED)
    if isinstance(payload, DisconnectTenant):
        return Disconnect(tenant_id)
    if isinstance(payload, ReconnectTenant):
        return Reconnect(tenant_id)
    if isinstance(payload, ImportNowPayload):
        return ImportNow(tenant_id, payload.what)
    raise PermanentError(f"{type(payload).__name__} is not a connection command")


def subscribers(service: PollerService) -> tuple[EventHandler, EventHandler]:
    """The Kafka subscribers: each translates a message into a command and runs its handler in
    a unit of work joined to the consumer's transaction (which holds the inbox claim)."""

    async def on_command(session: AsyncSession, event: Envelope[Payload]) -> None:
        command = connection_command_of(event)
        async with service.joined_uow(session) as uow:
            try:
                match command:
                    case Disconnect():
                        await handlers.disconnect(command, uow)
                    case Reconnect():
                        await handlers.reconnect(command, uow, service.scheduler.identify_token)
                    case ImportNow():
                        await handlers.import_now(command, uow)
            except handlers.UnknownTenant as exc:
                raise PermanentError(f"tenant {exc} never connected") from None
            except (CompanyMismatch, TokenRefused, handlers.NeedsNewToken) as exc:
                raise PermanentError(str(exc)) from None
            await uow.commit()
        if isinstance(command, Disconnect):
            # Not stop_tenant: this transaction holds the tenant's row until the handler ends.
            service.scheduler.close_gate(event.tenant_id)
        service.scheduler.wake()

    async def on_settings(session: AsyncSession, event: Envelope[Payload]) -> None:
        if not isinstance(event.payload, TenantSettingsChanged):
            raise PermanentError(f"{type(event.payload).__name__} is not a settings change")
        command = FollowSettings(event.tenant_id, event.payload.sync_interval_s)
        async with service.joined_uow(session) as uow:
            await handlers.follow_settings(command, uow)
            await uow.commit()
        service.scheduler.wake()

    return on_command, on_settings


def create_app(settings: PollerSettings | None = None) -> FastAPI:
    settings = settings or PollerSettings()
    config = SchedulerConfig(
        replica_id=settings.replica_id,
        pennylane_base_url=settings.pennylane_base_url,
        topic_prefix=settings.topic_prefix,
        lease_ttl_s=settings.lease_ttl_s,
        tick_s=settings.scheduler_tick_s,
        max_concurrent_syncs=settings.max_concurrent_syncs,
        limits=SyncLimits(
            page_size=settings.page_size,
            changelog_page_size=settings.changelog_page_size,
            purchase_order_window=settings.purchase_order_window,
        ),
    )
    service = PollerService(TokenCipher(settings.token_key), settings.connections_schema, config)

    def setup(runtime: ServiceRuntime) -> None:
        service.setup(runtime)
        add_collector(runtime, collect_sync_lag)
        on_command, on_settings = subscribers(service)
        runtime.subscribe(
            CONNECTION_COMMANDS,
            on_command,
            purpose="commands",
            redact=redact_connection_command,  # a connect command carries a Pennylane token
        )
        runtime.publishes(PENNYLANE_DOCUMENTS)
        runtime.publishes(PENNYLANE_CATALOG)
        runtime.publishes(POLLER_SYNC_RUNS)
        runtime.publishes(CONNECTION_EVENTS)
        runtime.subscribe(INVENTORY_SETTINGS, on_settings, purpose="settings")

    async def on_started(runtime: ServiceRuntime) -> None:
        service.scheduler.start()

    async def on_stopping(runtime: ServiceRuntime) -> None:
        await service.scheduler.stop()

    app = create_service_app(
        settings,
        title="Stockpit poller",
        description="Reads Pennylane per tenant, on schedule and on demand, and publishes events.",
        migrations=MIGRATIONS,
        setup=setup,
        api=_routes(service),
        on_started=on_started,
        on_stopping=on_stopping,
    )
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The registry's schema first: the command consumer writes to it as soon as it starts.
        await migrate(settings.database_url.get_secret_value(), settings.connections_schema)
        async with service_lifespan(app):
            yield

    app.router.lifespan_context = lifespan
    return app


def _routes(service: PollerService) -> APIRouter:
    router = APIRouter()
    router.include_router(connections_router(service))
    router.include_router(token_keys_router(service))
    return router


def main() -> None:
    settings = PollerSettings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
