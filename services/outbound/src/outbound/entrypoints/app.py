"""The outbound service process: request consumer, write worker and HTTP API (its outbox relay
runs beside it, `stockpit-relay`).

The Kafka subscribers only translate an event into a command and run its handler in a unit of
work joined to the reliable consumer's transaction (the one holding the event's inbox claim)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import httpx
from fastapi import FastAPI
from pydantic import Field, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_connections import ConnectionRegistry, TokenCipher, migrate_or_wait
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads.connections import ConnectionRepointed
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    EntityKind,
    ProductChangeRequested,
    ReceiptSendRequested,
)
from stockpit_contracts.topics import CONNECTION_EVENTS, OUTBOUND_REQUESTS, OUTBOUND_RESULTS
from stockpit_pennylane.client import (
    DEFAULT_BASE_URL,
    PENNYLANE_RATE_LIMIT,
    PennylaneClient,
    RetryPolicy,
    shared_http_client,
)
from stockpit_runtime import tracing
from stockpit_runtime.consumer import EventHandler, PermanentError
from stockpit_runtime.operations import add_collector, pennylane_request_hook
from stockpit_runtime.service import ServiceRuntime, create_service_app, serve
from stockpit_runtime.settings import ServiceSettings

from outbound.adapters.metrics import collect_pending_writes
from outbound.adapters.tokens import RegistryTokenSource, StaticTokenSource
from outbound.domain.commands import ForgetPennylaneCompany, StoreWrite
from outbound.domain.writes import RetrySchedule
from outbound.entrypoints.api import outbound_router
from outbound.service_layer import handlers
from outbound.service_layer.ports import BudgetShares, TokenSource
from outbound.service_layer.unit_of_work import UnitOfWork
from outbound.service_layer.worker import WorkerConfig, WriteWorker

MIGRATIONS = Path(__file__).resolve().parents[1] / "adapters" / "migrations"


class OutboundSettings(ServiceSettings):
    service_name: str = "outbound"
    http_port: int = 8030
    pennylane_base_url: str = DEFAULT_BASE_URL
    pennylane_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # The poller keeps this share of each token's 25 requests / 5 s; outbound gets the rest.
    poller_budget_share: Decimal = Field(default=Decimal("0.6"), ge=0, lt=1)
    # STOCKPIT_TOKEN_KEY: Fernet key(s) of the connection registry (see stockpit_connections).
    token_key: SecretStr = SecretStr("")
    connections_schema: str = Field(default="connections", pattern=r"^[a-z_][a-z0-9_]*$")
    # Development and tests only: tenant -> token; when set, the registry is not used.
    pennylane_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    write_max_attempts: int = Field(default=12, ge=1, le=100)
    write_retry_base_s: float = Field(default=1.0, gt=0, le=600)
    write_retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    ambiguous_settle_s: float = Field(default=5.0, ge=0, le=600)
    disconnected_recheck_s: float = Field(default=5.0, gt=0, le=3600)
    worker_poll_s: float = Field(default=0.5, gt=0, le=60)
    max_concurrent_tenants: int = Field(default=8, ge=1, le=1000)
    supplier_invoice_deadline_days: int = Field(default=30, ge=0, le=365)
    # One paced rate window (5 s + margin): what a predecessor process sent is unknown to us.
    startup_quiet_s: float = Field(default=5.5, ge=0, le=60)


@dataclass
class _Sources:
    """Where tokens and budget shares come from (the registry needs the runtime's engine)."""

    tokens: TokenSource | None = None
    shares: BudgetShares | None = None


PENNYLANE_REQUESTS_HOOK = pennylane_request_hook("outbound")
C = TypeVar("C")


def _record_of(payload: Payload) -> tuple[EntityKind, str]:
    """The Stockpit record a request writes: its writes keep their order."""
    if isinstance(payload, ProductChangeRequested):
        return "product", payload.product_id
    if isinstance(payload, CustomerWriteRequested):
        return "customer", payload.customer_id
    if isinstance(payload, ReceiptSendRequested):
        return "receipt", payload.receipt_id
    raise PermanentError(f"outbound does not handle {type(payload).__name__}")


def store_write_of(event: Envelope[Payload]) -> StoreWrite:
    kind, entity_id = _record_of(event.payload)
    return StoreWrite(
        tenant_id=event.tenant_id,
        entity_kind=kind,
        entity_id=entity_id,
        event_id=event.event_id,
        event_type=event.event_type,
        envelope=event.to_json(),
        traceparent=tracing.traceparent_of(event.event_id) if tracing.ACTIVE else None,
    )


def forget_of(event: Envelope[Payload]) -> ForgetPennylaneCompany:
    if not isinstance(event.payload, ConnectionRepointed):
        raise PermanentError(f"{type(event.payload).__name__} is not a connection event")
    return ForgetPennylaneCompany(tenant_id=event.tenant_id)


def consumed(
    command_of: Callable[[Envelope[Payload]], C],
    handler: Callable[[C, UnitOfWork], Awaitable[None]],
) -> EventHandler:
    """A subscriber: the event as a command, handled in the consumer's transaction."""

    async def handle(session: AsyncSession, event: Envelope[Payload]) -> None:
        command = command_of(event)
        async with UnitOfWork(session) as uow:
            await handler(command, uow)
            await uow.commit()

    return handle


class OutboundService:
    """The outbound process's own parts beside the runtime (set up by `setup`)."""

    runtime: ServiceRuntime
    worker: WriteWorker

    def __init__(self, settings: OutboundSettings, tokens: TokenSource | None) -> None:
        self.settings = settings
        # One connection pool for every tenant's client, as in the poller: a pool per tenant
        # (its own transport and TLS context) would grow the process with the tenants.
        self._http: httpx.AsyncClient | None = None
        self.uses_registry = tokens is None and not settings.pennylane_tokens
        self.sources = _Sources(tokens=tokens)
        if tokens is None and settings.pennylane_tokens:
            static = StaticTokenSource(settings.pennylane_tokens)
            self.sources = _Sources(tokens=static, shares=static)
        self.config = WorkerConfig(
            topic_prefix=settings.topic_prefix,
            schedule=RetrySchedule(
                max_attempts=settings.write_max_attempts,
                base_delay_s=settings.write_retry_base_s,
                max_delay_s=settings.write_retry_max_s,
                ambiguous_settle_s=settings.ambiguous_settle_s,
            ),
            poll_s=settings.worker_poll_s,
            disconnected_recheck_s=settings.disconnected_recheck_s,
            max_concurrent_tenants=settings.max_concurrent_tenants,
            supplier_invoice_deadline_days=settings.supplier_invoice_deadline_days,
            startup_quiet_s=settings.startup_quiet_s,
        )

    def uow(self) -> UnitOfWork:
        """A unit of work of its own transaction (HTTP commands and reads)."""
        return UnitOfWork(self.runtime.sessions)

    def wake_worker(self) -> None:
        self.worker.wake()

    async def budget_share(self, tenant_id: str) -> Decimal:
        """Outbound's share of the tenant's token: what the poller does not take now (less
        while the tenant's first sync runs), and never under one request per window."""
        poller_share = None
        if self.sources.shares is not None:
            poller_share = await self.sources.shares.poller_share_for(tenant_id)
        rest = Decimal(1) - (
            self.settings.poller_budget_share if poller_share is None else poller_share
        )
        return max(rest, Decimal(1) / PENNYLANE_RATE_LIMIT.requests)

    async def pennylane_client(self, tenant_id: str, token: SecretStr) -> PennylaneClient:
        # No resending inside the client: the worker retries whole writes, each starting with
        # a lookup, so a resent request can never apply a write twice.
        if self._http is None:
            self._http = shared_http_client(timeout_s=self.settings.pennylane_timeout_s)
        return PennylaneClient(
            token,
            base_url=self.settings.pennylane_base_url,
            budget_share=await self.budget_share(tenant_id),
            retry_policy=RetryPolicy(max_attempts=1, max_rate_limited_waits=3),
            on_request=PENNYLANE_REQUESTS_HOOK,
            http=self._http,
        )

    def setup(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        if self.uses_registry:
            registry = ConnectionRegistry(
                runtime.engine,
                TokenCipher(self.settings.token_key),
                schema=self.settings.connections_schema,
            )
            source = RegistryTokenSource(registry)
            self.sources.tokens, self.sources.shares = source, source
        assert self.sources.tokens is not None
        runtime.subscribe(
            OUTBOUND_REQUESTS, consumed(store_write_of, handlers.store_write), purpose="requests"
        )
        runtime.subscribe(
            CONNECTION_EVENTS,
            consumed(forget_of, handlers.forget_pennylane_company),
            purpose="connection-events",
        )
        runtime.publishes(OUTBOUND_RESULTS)
        add_collector(runtime, collect_pending_writes)
        self.worker = WriteWorker(
            runtime.engine,
            lambda: UnitOfWork(runtime.sessions),
            self.sources.tokens,
            self.pennylane_client,
            self.config,
            tracer=runtime.tracer,
            budget_share=self.budget_share,
        )

    async def start(self, _runtime: ServiceRuntime) -> None:
        if self.uses_registry:
            # The poller owns the registry. With one role for everything, creating it here too
            # (idempotent, locked) lets outbound start first; with a role of its own (read
            # only), outbound waits for the poller to migrate it.
            await migrate_or_wait(
                self.settings.database_url.get_secret_value(), self.settings.connections_schema
            )
        self.worker.start()

    async def stop(self, _runtime: ServiceRuntime) -> None:
        await self.worker.stop()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def create_app(
    settings: OutboundSettings | None = None, *, tokens: TokenSource | None = None
) -> FastAPI:
    settings = settings or OutboundSettings()
    service = OutboundService(settings, tokens)
    return create_service_app(
        settings,
        title="Stockpit outbound",
        description="Writes Stockpit's product, customer and receipt changes to Pennylane.",
        migrations=MIGRATIONS,
        setup=service.setup,
        api=outbound_router(service.uow, wake_worker=service.wake_worker),
        on_started=service.start,
        on_stopping=service.stop,
    )


def main() -> None:
    settings = OutboundSettings()
    serve(create_app(settings), settings)
