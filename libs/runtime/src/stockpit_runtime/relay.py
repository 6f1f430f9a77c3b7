"""`stockpit-relay`: the outbox relay of one service, as a process of its own.

It runs beside each service (the local runner, the demo, compose, the tests), reads the same
settings from the environment (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`, `STOCKPIT_*`) and
publishes the rows of one schema's outbox (`outbox.OutboxRelay`): woken by the NOTIFY of each
transaction that staged rows, with a slow poll (`STOCKPIT_OUTBOX_IDLE_POLL_S`) as a safety net.
Several may run for one schema (replicas): one publishes, the others wait for its lock.

Its HTTP port (`--port`, else `STOCKPIT_RELAY_HTTP_PORT`) answers `/health/live` (the process),
`/health/ready` (503 naming the failing check: database, broker, the relay failing
`STOCKPIT_RELAY_MAX_FAILURES` rounds in a row, the oldest row older than
`STOCKPIT_OUTBOX_MAX_AGE_S`) and `/metrics` (the `stockpit_outbox_*` figures).

    stockpit-relay --schema inventory
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from stockpit_runtime.auth import SecureRouter, check_routes_declare_access
from stockpit_runtime.db import create_engine, ping
from stockpit_runtime.kafka import broker_reachable, reliable_producer
from stockpit_runtime.logging import configure_logging, get_logger
from stockpit_runtime.operations import probe_check
from stockpit_runtime.outbox import OutboxRelay, outbox_check, outbox_status
from stockpit_runtime.settings import ServiceSettings

log = get_logger(__name__)


@dataclass
class RunningRelay:
    settings: ServiceSettings
    engine: AsyncEngine
    relay: OutboxRelay
    producer: AIOKafkaProducer


@asynccontextmanager
async def running_relay(settings: ServiceSettings) -> AsyncIterator[RunningRelay]:
    """The relay of `settings.schema_name` publishing while the block runs (the command's
    body; tests that run a service in their own process run its relay with it)."""
    engine = create_engine(
        settings.database_url.get_secret_value(), settings.schema_name, pool_size=2
    )
    producer = reliable_producer(
        settings.kafka_bootstrap_servers,
        f"{settings.schema_name}-relay",
        settings.kafka_security,
    )
    relay = OutboxRelay(
        engine,
        producer,
        settings.schema_name,
        batch_size=settings.outbox_batch_size,
        idle_poll_s=settings.outbox_idle_poll_s,
        security=settings.kafka_security,
    )
    try:
        await producer.start()
        relay.start()
        yield RunningRelay(settings, engine, relay, producer)
    finally:
        await relay.stop()
        await producer.stop()
        await engine.dispose()


HEALTH = "probes of the orchestrator and load balancer; they tell nothing of any tenant"


def create_relay_app(settings: ServiceSettings) -> FastAPI:
    """The relay with its health and metrics endpoints (no other route, no tenant data)."""
    state: dict[str, RunningRelay] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running_relay(settings) as running:
            state["running"] = running
            log.info("outbox relay started", schema=settings.schema_name)
            try:
                yield
            finally:
                state.clear()
        log.info("outbox relay stopped", schema=settings.schema_name)

    app = FastAPI(title=f"stockpit-relay {settings.schema_name}", lifespan=lifespan)
    router = SecureRouter(tags=["operations"])

    @router.get("/health/live", public=HEALTH)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready", public=HEALTH)
    async def ready() -> JSONResponse:
        running = state.get("running")
        checks = await readiness_checks(running) if running is not None else {"started": "starting"}
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "checks": checks},
            status_code=200 if healthy else 503,
        )

    @router.get(
        "/metrics",
        public="Prometheus scraping; counters only, no tenant data",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        running = state.get("running")
        if running is not None:
            with contextlib.suppress(Exception):  # a scrape reports what it can
                async with asyncio.timeout(3):
                    await outbox_status(running.engine, settings.schema_name)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(router)
    check_routes_declare_access(app)
    return app


async def readiness_checks(running: RunningRelay) -> dict[str, str]:
    """Each check "ok" or what is wrong."""
    settings = running.settings
    health = running.relay.health
    checks = {
        "database": await probe_check(ping(running.engine)),
        "broker": await probe_check(broker_reachable(running.producer)),
        "relay": (
            "ok"
            if health.consecutive_failures < settings.relay_max_failures
            else f"failed: {health.consecutive_failures} rounds in a row: {health.last_error}"
        ),
    }
    checks["outbox"] = await outbox_check(
        running.engine, settings.outbox_max_age_s, settings.schema_name
    )
    return checks


def relay_settings(argv: Sequence[str] | None = None) -> ServiceSettings:
    """The environment's settings, with the command line's schema and port over them."""
    parser = argparse.ArgumentParser(
        prog="stockpit-relay", description="Publish one service's outbox rows to Kafka."
    )
    parser.add_argument(
        "--schema", help="the service's PostgreSQL schema (default: STOCKPIT_DB_SCHEMA)"
    )
    parser.add_argument(
        "--port", type=int, help="HTTP port of health and metrics (STOCKPIT_RELAY_HTTP_PORT)"
    )
    arguments = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if arguments.schema:
        overrides["db_schema"] = arguments.schema
    if arguments.port is not None:
        overrides["relay_http_port"] = arguments.port
    settings = ServiceSettings(**overrides)  # type: ignore[arg-type]
    if not settings.db_schema:
        parser.error("give the schema: --schema NAME or STOCKPIT_DB_SCHEMA")
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    settings = relay_settings(argv)
    configure_logging(f"{settings.schema_name}-relay", settings.log_level)
    app = create_relay_app(settings)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=settings.http_host, port=settings.relay_http_port, log_config=None)


if __name__ == "__main__":
    main()
