"""The outbound service process: request consumer, write worker and HTTP API (its outbox relay
runs beside it, `stockpit-relay`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from fastapi import FastAPI
from pydantic import Field, SecretStr
from stockpit_connections import ConnectionRegistry, TokenCipher, migrate_or_wait
from stockpit_contracts.topics import CONNECTION_EVENTS, OUTBOUND_REQUESTS, OUTBOUND_RESULTS
from stockpit_pennylane.client import DEFAULT_BASE_URL, PennylaneClient, RetryPolicy
from stockpit_runtime.operations import add_collector, pennylane_request_hook
from stockpit_runtime.service import ServiceRuntime, create_service_app, serve
from stockpit_runtime.settings import ServiceSettings

from outbound.adapters.metrics import collect_pending_writes
from outbound.adapters.tokens import RegistryTokenSource, StaticTokenSource
from outbound.domain.writes import RetrySchedule
from outbound.entrypoints.api import outbound_router
from outbound.service_layer.ports import BudgetShares, TokenSource
from outbound.service_layer.requests import accept_request, follow_connection
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


def create_app(
    settings: OutboundSettings | None = None, *, tokens: TokenSource | None = None
) -> FastAPI:
    settings = settings or OutboundSettings()
    prefix = settings.topic_prefix
    uses_registry = tokens is None and not settings.pennylane_tokens
    sources = _Sources(tokens=tokens)
    if tokens is None and settings.pennylane_tokens:
        static = StaticTokenSource(settings.pennylane_tokens)
        sources = _Sources(tokens=static, shares=static)

    async def pennylane_client(tenant_id: str, token: SecretStr) -> PennylaneClient:
        poller_share = None
        if sources.shares is not None:
            poller_share = await sources.shares.poller_share_for(tenant_id)
        budget_share = Decimal(1) - (
            settings.poller_budget_share if poller_share is None else poller_share
        )
        # No resending inside the client: the worker retries whole writes, each starting with
        # a lookup, so a resent request can never apply a write twice.
        return PennylaneClient(
            token,
            base_url=settings.pennylane_base_url,
            budget_share=budget_share,
            retry_policy=RetryPolicy(max_attempts=1, max_rate_limited_waits=3),
            timeout_s=settings.pennylane_timeout_s,
            on_request=PENNYLANE_REQUESTS_HOOK,
        )

    config = WorkerConfig(
        topic_prefix=prefix,
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

    def setup(runtime: ServiceRuntime) -> None:
        if uses_registry:
            registry = ConnectionRegistry(
                runtime.engine, TokenCipher(settings.token_key), schema=settings.connections_schema
            )
            source = RegistryTokenSource(registry)
            sources.tokens, sources.shares = source, source
        assert sources.tokens is not None
        runtime.subscribe(OUTBOUND_REQUESTS, accept_request, purpose="requests")
        runtime.subscribe(CONNECTION_EVENTS, follow_connection, purpose="connection-events")
        runtime.publishes(OUTBOUND_RESULTS)
        add_collector(runtime, collect_pending_writes)
        runtime.extras["write_worker"] = WriteWorker(
            runtime.engine,
            runtime.sessions,
            sources.tokens,
            pennylane_client,
            config,
            tracer=runtime.tracer,
        )

    async def start_worker(runtime: ServiceRuntime) -> None:
        if uses_registry:
            # The poller owns the registry. With one role for everything, creating it here too
            # (idempotent, locked) lets outbound start first; with a role of its own (read
            # only), outbound waits for the poller to create it.
            await migrate_or_wait(
                settings.database_url.get_secret_value(), settings.connections_schema
            )
        runtime.extras["write_worker"].start()

    async def stop_worker(runtime: ServiceRuntime) -> None:
        await runtime.extras["write_worker"].stop()

    return create_service_app(
        settings,
        title="Stockpit outbound",
        description="Writes Stockpit's product, customer and receipt changes to Pennylane.",
        migrations=MIGRATIONS,
        setup=setup,
        api=outbound_router(),
        on_started=start_worker,
        on_stopping=stop_worker,
    )


def main() -> None:
    settings = OutboundSettings()
    serve(create_app(settings), settings)
