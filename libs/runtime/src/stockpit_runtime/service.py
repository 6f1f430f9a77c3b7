"""One service process: FastStream (Kafka through aiokafka) served inside a FastAPI app.

FastAPI carries the HTTP side (health, metrics, the service's own API and its OpenAPI document);
the FastStream broker carries the Kafka side and its AsyncAPI document. The lifespan hook opens
and closes everything in order: migrations, topics, producer, subscribers. The events a service
stages in its outbox are published by its relay, `stockpit-relay`, a process of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import operator
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage
from faststream.specification import AsyncAPI, get_asyncapi_html
from opentelemetry.trace import Tracer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, PlainValidator
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from stockpit_contracts import Payload, Topic, topic_payload_types
from stockpit_contracts.events import envelope_type
from stockpit_contracts.payloads.dead_letters import DeadLetter

from stockpit_runtime import auth, tracing
from stockpit_runtime.auth import Problem, SecureRouter, TokenVerifier, check_routes_declare_access
from stockpit_runtime.consumer import (
    BatchEventHandler,
    EventHandler,
    IncomingMessage,
    ReliableConsumer,
    ReplayOutcome,
    replay_dead_letter,
)
from stockpit_runtime.db import create_engine, ping, session_factory
from stockpit_runtime.kafka import (
    broker_reachable,
    ensure_topics,
    reliable_producer,
    system_topic_names,
)
from stockpit_runtime.logging import configure_logging, get_logger, library_logger
from stockpit_runtime.messaging_tables import dead_letters
from stockpit_runtime.migrations import upgrade_to_head
from stockpit_runtime.operations import collect, instrument, probe_check, readiness_problems
from stockpit_runtime.pagination import Cursor, Limit, decode_cursor, link_next
from stockpit_runtime.settings import ServiceSettings

log = get_logger(__name__)

TenantQuery = Annotated[
    str | None, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
]
DeadLetterId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    # Handlers decode envelopes themselves, so that a broken body becomes a dead letter
    # with a reason instead of an error inside the framework.
    return message.body


def _unchanged(value: Any) -> Any:
    return value


def _documented_as(models: Sequence[type[BaseModel]], *, batch: bool = False) -> Any:
    """The type a handler's body is annotated with: FastStream documents a subscriber's payload
    as the JSON Schema of that annotation, here one of `models` (a list of them for a batch).
    The plain validator replaces validation: the raw bytes reach the reliable consumer, which
    decodes them itself (an undecodable message becomes a dead letter, not a framework error).
    """
    one_of: Any = reduce(operator.or_, models)
    documented = list[one_of] if batch else one_of
    return Annotated[documented, PlainValidator(_unchanged, json_schema_input_type=documented)]


def _envelopes(topic: Topic, payload_types: Sequence[type[Payload]]) -> list[type[BaseModel]]:
    for payload_type in payload_types:
        if topic != payload_type.TOPIC:
            raise ValueError(f"{payload_type.__name__} belongs on {payload_type.TOPIC.base_name}")
    return [envelope_type(payload_type) for payload_type in payload_types]


@dataclass
class ServiceRuntime:
    """What a running service holds; handlers and routes reach it through `app.state.runtime`."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: KafkaBroker
    started: bool = False
    # A service's own figures, read at each scrape (`operations.add_collector`).
    metric_collectors: list[Hook] = field(default_factory=list)
    # Set when tracing is on (`stockpit_runtime.tracing`): the consumers' spans.
    tracer: Tracer | None = None
    _producer: Any = None

    @property
    def producer(self) -> Any:
        return self._producer

    def consumer(
        self, purpose: str = "main", redact: Callable[[bytes], bytes] | None = None
    ) -> ReliableConsumer:
        return ReliableConsumer(
            self.sessions,
            service=self.settings.service_name,
            consumer_group=self.settings.consumer_group(purpose),
            max_attempts=self.settings.consumer_max_attempts,
            retry_backoff_s=self.settings.consumer_retry_backoff_s,
            redact=redact,
        )

    def publishes(self, topic: Topic, *payload_types: type[Payload]) -> None:
        """Declare that this service stages events of `payload_types` (by default every type
        the topic carries) for `topic`: the outbox relay sends them, and the declaration puts
        the topic and the envelope schemas of those payloads in the service's AsyncAPI."""
        name = topic.name(self.settings.topic_prefix)
        envelopes = _envelopes(topic, payload_types or topic_payload_types(topic))
        self.broker.publisher(
            name,
            schema=reduce(operator.or_, envelopes),
            title=f"{self.settings.service_name}:{name}",
            description=(
                f"{topic.why}. Key: {topic.key.value}. Staged in the outbox with the state"
                " change, sent by the outbox relay (at least once, in order per key)."
            ),
        )

    def subscribe(
        self,
        topic: Topic,
        handler: EventHandler,
        *,
        purpose: str = "main",
        max_batch: int | None = None,
        batch_handler: BatchEventHandler | None = None,
        redact: Callable[[bytes], bytes] | None = None,
        consumers: int = 1,
    ) -> None:
        """Consume `topic` in this service's consumer group for `purpose`, reliably.

        With `max_batch`, up to that many records are handled per database transaction
        (`ReliableConsumer.process_batch`), by `batch_handler` in one call when given;
        a failing batch falls back to one by one with `handler`.

        `consumers` Kafka consumers join the group from this process, each with its own
        partitions, fetches and offset commits, so that one's batch can be applied while
        another's waits on the database (as two replicas would). Their handlers share the
        event loop: what they share in the process must not assume one batch at a time.

        The AsyncAPI document lists the topic with the envelopes of every payload type it
        carries (`stockpit_contracts.topic_payload_types`), and its dead-letter topic.
        """
        if batch_handler is not None and max_batch is None:
            raise ValueError("a batch handler needs max_batch")
        if consumers < 1:
            raise ValueError("consumers must be at least 1")
        consumer = self.consumer(purpose, redact)
        group = self.settings.consumer_group(purpose)
        name = topic.name(self.settings.topic_prefix)
        title = f"{self.settings.service_name}.{purpose}:{name}"
        description = (
            f"{topic.why}. Each event is applied once (inbox, in the handler's transaction);"
            f" a message that cannot be decoded, is invalid or keeps failing goes to"
            f" {topic.dead_letters(self.settings.topic_prefix)}."
        )
        envelopes = _envelopes(topic, topic_payload_types(topic))
        self.broker.publisher(
            topic.dead_letters(self.settings.topic_prefix),
            schema=DeadLetter,
            title=f"{title}:dead-letters",
            description="Messages this consumer gave up on, with the reason (through the outbox).",
        )

        def subscribe(subscriber: Callable[..., Awaitable[None]], **options: Any) -> None:
            for index in range(consumers):
                self.broker.subscriber(
                    name,
                    group_id=group,
                    ack_policy=AckPolicy.NACK_ON_ERROR,
                    auto_offset_reset="earliest",
                    decoder=_raw_body,
                    title=title,
                    description=description,
                    include_in_schema=index == 0,  # one channel in the AsyncAPI document
                    **options,
                )(subscriber)

        if max_batch is not None:

            async def on_batch(body: list[bytes], msg: KafkaMessage) -> None:
                records = msg.raw_message
                assert isinstance(records, tuple), "subscribed in batches"
                messages = [
                    IncomingMessage(
                        topic=record.topic,
                        partition=record.partition,
                        offset=record.offset,
                        key=record.key,
                        value=value,
                        headers=tuple(record.headers or ()),
                    )
                    for record, value in zip(records, body, strict=True)
                ]
                if self.tracer is not None:
                    with tracing.consuming(
                        self.tracer, name, [message.headers for message in messages]
                    ):
                        await consumer.process_batch(messages, handler, batch_handler)
                    return
                await consumer.process_batch(messages, handler, batch_handler)

            on_batch.__annotations__["body"] = _documented_as(envelopes, batch=True)
            subscribe(on_batch, batch=True, max_records=max_batch, batch_timeout_ms=50)
            return

        async def on_message(body: bytes, msg: KafkaMessage) -> None:
            record = msg.raw_message
            assert not isinstance(record, tuple), "subscribed one message at a time"
            message = IncomingMessage(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=body,
                headers=tuple(record.headers or ()),
            )
            if self.tracer is not None:
                with tracing.consuming(self.tracer, name, [message.headers]):
                    await consumer.process(message, handler)
                return
            await consumer.process(message, handler)

        on_message.__annotations__["body"] = _documented_as(envelopes)
        subscribe(on_message)


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str,
    migrations: Path,
    setup: Callable[[ServiceRuntime], None],
    api: APIRouter | None = None,
    on_started: Hook | None = None,
    on_stopping: Hook | None = None,
) -> FastAPI:
    """Build a service: `setup` registers subscribers, `api` adds the service's own routes
    (made with `stockpit_runtime.auth.SecureRouter`: every route declares its scope).

    Refuses (`AuthConfigError`) when the settings give no way to verify access tokens."""
    configure_logging(settings.service_name, settings.log_level)
    verifier = TokenVerifier.from_settings(settings)
    if verifier is None:
        log.warning(
            "STOCKPIT_AUTH=disabled: the HTTP API answers anyone who reaches its port, "
            "as an operator of every tenant"
        )
    engine = create_engine(settings.database_url.get_secret_value(), settings.schema_name)
    tracer_provider = tracing.start(settings.service_name) if settings.tracing != "off" else None
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=settings.service_name,
        graceful_timeout=15,
        logger=library_logger("faststream.kafka"),
        middlewares=tracing.broker_middlewares(tracer_provider),
        security=settings.kafka_security.faststream_security(),
    )
    runtime = ServiceRuntime(
        settings=settings, engine=engine, sessions=session_factory(engine), broker=broker
    )
    if tracer_provider is not None:
        runtime.tracer = tracer_provider.get_tracer("stockpit_runtime")
    setup(runtime)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await upgrade_to_head(
            migrations, settings.database_url.get_secret_value(), settings.schema_name
        )
        await ensure_topics(
            settings.kafka_bootstrap_servers,
            system_topic_names(settings.topic_prefix),
            partitions=settings.topic_partitions,
            replication_factor=settings.topic_replication_factor,
            min_insync_replicas=settings.topic_min_insync_replicas,
            security=settings.kafka_security,
        )
        producer = reliable_producer(
            settings.kafka_bootstrap_servers, settings.service_name, settings.kafka_security
        )
        await producer.start()
        runtime._producer = producer
        await broker.start()
        if on_started is not None:
            await on_started(runtime)
        runtime.started = True
        log.info("service started", http_port=settings.http_port)
        try:
            yield
        finally:
            runtime.started = False
            if on_stopping is not None:
                await on_stopping(runtime)
            await broker.stop()
            await producer.stop()
            await engine.dispose()
            if tracer_provider is not None:
                tracing.stop(tracer_provider)
            log.info("service stopped")

    app = FastAPI(title=title, description=description, lifespan=lifespan)
    app.state.runtime = runtime
    instrument(app)
    if tracer_provider is not None:
        tracing.instrument_app(app, engine, tracer_provider)
    app.state.token_verifier = verifier
    app.include_router(_operations_router(runtime, title, description))
    if api is not None:
        app.include_router(api)
    check_routes_declare_access(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.http_max_body_bytes,
        # Read when the app first serves: routes included after this call count too.
        route_limits=lambda: auth.route_body_limits(app),
    )
    return app


class BodySizeLimit:
    """413 for a request body over `max_bytes` (or the cap its route declared, see
    `SecureRouter`'s `max_body_bytes`): at once when its Content-Length says so, else as soon
    as the bytes read pass it (a chunked body); the route then reads a disconnect and whatever
    it would answer is dropped."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        route_limits: Callable[[], Sequence[auth.BodyLimit]] = tuple,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.route_limits = route_limits()

    def _limit(self, scope: Scope) -> int:
        for limit in self.route_limits:
            if limit.applies(scope["method"], scope["path"]):
                return limit.max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
            await self._refuse(send, max_bytes)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes and not started:
                    refused = True
                    await self._refuse(send, max_bytes)
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, watched_send)

    @staticmethod
    async def _refuse(send: Send, max_bytes: int) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {max_bytes} bytes, the most this route takes"},
            status_code=413,
        )
        await response({"type": "http"}, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class DeadLetterView(BaseModel):
    id: int
    consumer_group: str
    topic: str
    partition: int
    offset: int
    tenant_id: str | None
    error_type: str
    reason: str
    attempts: int
    failed_at: dt.datetime
    replayed_at: dt.datetime | None
    value: str


class ReplayView(BaseModel):
    id: int
    status: Literal["replayed"]


HEALTH = "probes of the orchestrator and load balancer; they tell nothing of any tenant"
DOCS = "describes the interface (no data): a client needs it to learn how to call and log in"


def _operations_router(runtime: ServiceRuntime, title: str, description: str) -> APIRouter:
    router = SecureRouter(tags=["operations"])
    auth_mode = "disabled" if runtime.settings.auth == "disabled" else "bearer-jwt"

    @router.get("/health/live", public=HEALTH)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/health/ready", public=HEALTH)
    async def ready() -> JSONResponse:
        checks = {
            "database": await probe_check(ping(runtime.engine)),
            "broker": (
                await probe_check(broker_reachable(runtime.producer))
                if runtime.producer is not None
                else "not started"
            ),
            "started": "ok" if runtime.started else "starting",
            **await readiness_problems(runtime),
        }
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "auth": auth_mode, "checks": checks},
            status_code=200 if healthy else 503,
        )

    @router.get(
        "/metrics",
        public="Prometheus scraping; counters only, no tenant data",
        response_class=PlainTextResponse,
    )
    async def metrics() -> Response:
        await collect(runtime)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/operations/dead-letters",
        scope=auth.Scope.OPERATIONS_ADMIN,
        response_model=list[DeadLetterView],
    )
    async def list_dead_letters(
        request: Request,
        response: Response,
        tenant_id: TenantQuery = None,
        include_replayed: bool = False,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[DeadLetterView]:
        """Messages this service's consumers gave up on, newest first, with the reason."""
        after = decode_cursor(cursor, 1)
        query = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit + 1)
        if after is not None:
            query = query.where(dead_letters.c.id < int(after[0]))
        if tenant_id is not None:
            query = query.where(dead_letters.c.tenant_id == tenant_id)
        if not include_replayed:
            query = query.where(dead_letters.c.replayed_at.is_(None))
        async with runtime.sessions() as session:
            rows = (await session.execute(query)).all()
        link_next(request, response, (rows[limit - 1].id,) if len(rows) > limit else None)
        return [
            DeadLetterView(
                id=row.id,
                consumer_group=row.consumer_group,
                topic=row.original_topic,
                partition=row.partition,
                offset=row.offset,
                tenant_id=row.tenant_id,
                error_type=row.error_type,
                reason=row.reason,
                attempts=row.attempts,
                failed_at=row.failed_at,
                replayed_at=row.replayed_at,
                value=row.value.decode(errors="replace"),
            )
            for row in rows[:limit]
        ]

    @router.post(
        "/operations/dead-letters/{dead_letter_id}/replay",
        status_code=202,
        scope=auth.Scope.OPERATIONS_ADMIN,
        responses={409: {"model": Problem, "description": "replayed already"}},
    )
    async def replay(dead_letter_id: DeadLetterId) -> ReplayView:
        """Put the original message back on its topic (through the outbox), once: a dead
        letter already replayed is refused with 409 (it failed again: a new one is made)."""
        async with runtime.sessions.begin() as session:
            outcome = await replay_dead_letter(session, dead_letter_id)
        if outcome is ReplayOutcome.NOT_FOUND:
            raise HTTPException(404, f"no dead letter {dead_letter_id}")
        if outcome is ReplayOutcome.ALREADY_REPLAYED:
            raise HTTPException(409, f"dead letter {dead_letter_id} was replayed already")
        return ReplayView(id=dead_letter_id, status="replayed")

    def specification() -> Any:
        return AsyncAPI(runtime.broker, title=title, description=description).to_specification()

    @router.get("/asyncapi.json", public=DOCS)
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(specification().to_jsonable())

    @router.get("/asyncapi", response_class=HTMLResponse, public=DOCS)
    async def asyncapi_html() -> str:
        return get_asyncapi_html(specification())

    return router


def tune_garbage_collection(settings: ServiceSettings) -> None:
    """Keep the cyclic garbage collector off the hot path of a long-running service.

    Applying a batch of documents allocates hundreds of thousands of short-lived objects; with
    Python's default thresholds (a young collection every 700 allocations) the collector keeps
    scanning them, and now and then the whole heap (every imported module, FastAPI, pydantic).
    The objects alive after start-up are frozen (never scanned again) and young collections
    run every `gc_young_threshold` allocations (docs/performance.md has the measurement)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.gc_young_threshold, older, oldest)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Entrypoint body: serve the app with uvicorn until SIGTERM/SIGINT."""
    import uvicorn

    tune_garbage_collection(settings)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_config=None)
