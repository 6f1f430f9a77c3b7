"""What an operator reads from a running service: readiness checks that tell the truth, the
figures Prometheus scrapes, and the HTTP answers for requests that would make a message too
large.

Readiness (`/health/ready`) is 503, naming the failing check, when the database or the broker do
not answer, when the outbox's oldest row is older than `STOCKPIT_OUTBOX_MAX_AGE_S` (its relay is
stuck, far behind or not running), and when a Kafka consumer has stopped. Liveness stays "the
process answers". The relay (`stockpit-relay`) has health and metrics of its own (`relay.py`):
its failures and the outbox figures are there.

Figures that need a query (consumer lag, a service's own queue) are read when `/metrics` is
scraped, never on the hot path. No series carries a tenant label: tenants grow
without bound; per-tenant detail is in the services' HTTP APIs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram
from stockpit_contracts.sizes import MessageTooLarge

from stockpit_runtime.logging import get_logger
from stockpit_runtime.outbox import outbox_check

if TYPE_CHECKING:
    from stockpit_runtime.service import ServiceRuntime

log = get_logger(__name__)

Collector = Callable[["ServiceRuntime"], Awaitable[None]]
# The ASGI shapes (as starlette.types spells them).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CONSUMER_LAG = Gauge(
    "stockpit_consumer_lag",
    "Messages on a partition not yet consumed (high watermark minus position)",
    ["consumer_group", "topic", "partition"],
)
HTTP_REQUESTS = Counter(
    "stockpit_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "stockpit_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

PENNYLANE_REQUESTS = Counter(
    "stockpit_pennylane_requests_total",
    "Requests sent to Pennylane (each attempt), by service, endpoint class and status"
    " (429: rate limited; none: no answer)",
    ["service", "endpoint", "status"],
)
PENNYLANE_SECONDS = Histogram(
    "stockpit_pennylane_request_duration_seconds",
    "Time Pennylane took to answer, by service and endpoint class",
    ["service", "endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def endpoint_class(method: str, path: str) -> str:
    """`GET customer_invoices/:id`: the method and the path with ids replaced, from the API's
    version segment on (a bounded set, whatever the ids)."""
    parts = [part for part in path.split("?", 1)[0].split("/") if part]
    if "v2" in parts:
        parts = parts[parts.index("v2") + 1 :]
    shape = "/".join(":id" if part.isdigit() else part for part in parts[:3])
    return f"{method.upper()} {shape}"


def pennylane_request_hook(service: str) -> Callable[[Any], None]:
    """An `on_request` hook for the Pennylane client (its `RequestRecord`: method, path,
    status, elapsed_s)."""

    def on_request(record: Any) -> None:
        endpoint = endpoint_class(record.method, record.path)
        status = "none" if record.status is None else str(record.status)
        PENNYLANE_REQUESTS.labels(service, endpoint, status).inc()
        PENNYLANE_SECONDS.labels(service, endpoint).observe(record.elapsed_s)

    return on_request


def add_collector(runtime: ServiceRuntime, collector: Collector) -> None:
    """A service's own figures (outbound's queue, the poller's sync lag), read at each scrape."""
    runtime.metric_collectors.append(collector)


async def collect(runtime: ServiceRuntime) -> None:
    """Refresh the figures that are read rather than counted (before `/metrics` answers)."""
    collectors: list[Collector] = [
        _consumer_lag,
        *runtime.metric_collectors,
    ]
    for collector in collectors:
        try:
            async with asyncio.timeout(3):
                await collector(runtime)
        except Exception as exc:  # a scrape reports what it can, it never fails
            log.warning("a metric could not be read", collector=collector.__name__, error=repr(exc))


async def _consumer_lag(runtime: ServiceRuntime) -> None:
    for subscriber in runtime.broker.subscribers:
        consumer: Any = getattr(subscriber, "consumer", None)
        if consumer is None:
            continue
        group = getattr(consumer, "_group_id", None) or "none"
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            position = await consumer.position(partition)
            CONSUMER_LAG.labels(group, partition.topic, str(partition.partition)).set(
                max(0, highwater - position)
            )


async def probe_check(probe: Awaitable[None], timeout_s: float = 3) -> str:
    """A readiness check's answer: "ok", or "failed: <error>" when the probe raised or did not
    answer in time (a readiness probe reports, it never raises)."""
    try:
        async with asyncio.timeout(timeout_s):
            await probe
    except Exception as exc:
        return f"failed: {type(exc).__name__}"
    return "ok"


async def readiness_problems(runtime: ServiceRuntime) -> dict[str, str]:
    """The checks beyond database and broker: "ok" or what is wrong."""
    settings = runtime.settings
    checks = {"outbox": await outbox_check(runtime.engine, settings.outbox_max_age_s)}
    checks["consumers"] = _consumers_check(runtime)
    return checks


def _consumers_check(runtime: ServiceRuntime) -> str:
    if not runtime.started:
        return "ok"
    stopped = [
        str(getattr(subscriber, "title_", None) or subscriber)
        for subscriber in runtime.broker.subscribers
        if not subscriber.running or any(task.done() for task in getattr(subscriber, "tasks", ()))
    ]
    return "ok" if not stopped else f"failed: stopped: {', '.join(stopped)}"


def instrument(app: FastAPI) -> None:
    """HTTP metrics per route template (never per raw path: ids would make series without
    bound), and the 413 answer for a request that would make a message too large."""
    app.add_middleware(_HttpMetrics)

    @app.exception_handler(MessageTooLarge)
    async def too_large(request: Request, exc: MessageTooLarge) -> JSONResponse:
        return JSONResponse(
            {
                "detail": [
                    {
                        "loc": ["body", *exc.field.split(".")],
                        "msg": str(exc),
                        "type": "message_too_large",
                    }
                ]
            },
            status_code=413,
        )


class _HttpMetrics:
    """A plain ASGI middleware: counts and times each request once it answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_SECONDS.labels(method, template).observe(time.perf_counter() - started)
