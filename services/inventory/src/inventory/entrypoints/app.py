"""The inventory service process: Kafka consumers and HTTP API (its outbox relay runs beside it).

Consumes Pennylane documents and catalog changes (from the poller) and the outbound service's
results; every handler runs in a unit of work joined to the consumer's transaction (the one
holding the inbox claim), so a message is applied once whatever Kafka redelivers. A refused
message (DomainError) is dead-lettered with its reason and the stream goes on.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads import catalog, connections, documents, outbound, poller
from stockpit_contracts.topics import (
    CONNECTION_EVENTS,
    INVENTORY_PROBLEMS,
    INVENTORY_SETTINGS,
    INVENTORY_STOCK,
    OUTBOUND_REQUESTS,
    OUTBOUND_RESULTS,
    PENNYLANE_CATALOG,
    PENNYLANE_DOCUMENTS,
    POLLER_SYNC_RUNS,
)
from stockpit_runtime.consumer import BatchEventHandler, EventHandler, PermanentError
from stockpit_runtime.service import ServiceRuntime, create_service_app, serve
from stockpit_runtime.settings import ServiceSettings

from inventory.domain.documents import DocumentVersion
from inventory.domain.errors import DomainError
from inventory.entrypoints.api import router as api_router
from inventory.entrypoints.reports_api import router as reports_router
from inventory.service_layer import outbound_results, pennylane_intake, problems
from inventory.service_layer.handlers import NotFound
from inventory.service_layer.unit_of_work import UnitOfWork

MIGRATIONS = Path(__file__).resolve().parents[1] / "adapters" / "migrations"


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    http_port: int = 8020
    # Documents applied per database transaction at most (a failing batch falls back to one by
    # one). Above a fetch's worth of records (the consumer fetches up to 1 MiB a partition,
    # about 300 invoices of 20 lines), so a batch takes a whole fetch rather than splitting it
    # into a full batch and a small one.
    documents_batch_size: int = Field(default=500, ge=1, le=5000)
    # A batch of documents keeps hundreds of thousands of objects alive until it is written: a
    # lower threshold makes the collector scan them again and again.
    gc_young_threshold: int = Field(default=100_000, ge=100, le=1_000_000)
    # Kafka consumers of the documents topic in this process (one consumer group, each with
    # its own partitions): with two, one's batch is applied in Python while the other's waits
    # on PostgreSQL, as two replicas would. Documents are keyed by tenant, so this only helps
    # when the tenants' documents land on more than one partition.
    documents_consumers: int = Field(default=2, ge=1, le=16)


def _document_version(tenant_id: str, payload: Payload) -> DocumentVersion:
    if not isinstance(payload, documents.DocumentVersionRead | documents.DocumentDeleted):
        raise PermanentError(f"{type(payload).__name__} does not belong on the documents topic")
    return pennylane_intake.document_version(tenant_id, payload)


async def _apply_document(payload: Payload, uow: UnitOfWork) -> None:
    await pennylane_intake.apply_document(_document_version(uow.tenant_id, payload), uow)


class _CollectionPause:
    """Pauses of the cyclic garbage collector, counted: it resumes when the last one ends (a
    pause may begin while another is under way), and only if it was running before the
    first."""

    depth = 0
    resume = False
    # Pauses that ended while another went on, since the collector last ran: with several
    # documents consumers the pauses can overlap without end, and cyclic garbage must not
    # pile up meanwhile.
    overlapped = 0


# A full collection after this many overlapped pauses (a few a minute under full load).
OVERLAPPED_PAUSES_PER_COLLECTION = 16


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is applied.

    A batch keeps everything it made alive until it is written (versions, orders, ledger
    entries, events, rows), and a young collection traverses every live object made since the
    last one: the collections during a batch scanned that whole heap again and again, and
    promoted it to older generations to scan again later. Paused, its objects are freed by
    reference counting when the batch ends, and the next collection finds little left; the
    cyclic garbage other tasks make meanwhile waits until then (a batch is bounded by
    `documents_batch_size`).
    """
    if _CollectionPause.depth == 0:
        _CollectionPause.resume = gc.isenabled()
        gc.disable()
    _CollectionPause.depth += 1
    try:
        yield
    finally:
        _CollectionPause.depth -= 1
        if _CollectionPause.depth == 0:
            _CollectionPause.overlapped = 0
            if _CollectionPause.resume:
                gc.enable()
        elif _CollectionPause.resume:
            _CollectionPause.overlapped += 1
            if _CollectionPause.overlapped >= OVERLAPPED_PAUSES_PER_COLLECTION:
                _CollectionPause.overlapped = 0
                gc.collect()


def documents_batch_handler(topic_prefix: str) -> BatchEventHandler:
    """A consumer batch of documents, one unit of work per tenant (events in order). Any
    failure rolls the batch back and the consumer applies it again one event at a time with
    `event_handler`, which dead-letters only the event at fault."""

    async def handle(session: AsyncSession, events: Sequence[Envelope[Payload]]) -> None:
        by_tenant: dict[str, list[Envelope[Payload]]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant_id, []).append(event)
        with collection_paused():
            for tenant_id, tenant_events in by_tenant.items():
                async with UnitOfWork(session, tenant_id, topic_prefix=topic_prefix) as uow:
                    await pennylane_intake.apply_documents(
                        [(_document_version(tenant_id, e.payload), e.meta) for e in tenant_events],
                        uow,
                    )
                    await uow.commit()

    return handle


async def _apply_catalog(payload: Payload, uow: UnitOfWork) -> None:
    match payload:
        case catalog.ProductUpserted():
            await pennylane_intake.apply_product(payload, uow)
        case catalog.ProductDeleted():
            await pennylane_intake.apply_product_deleted(payload, uow)
        case catalog.CustomerUpserted():
            await pennylane_intake.apply_customer(payload, uow)
        case catalog.CustomerDeleted():
            # Stockpit keeps the customer: its orders still name it; nothing to undo.
            return
        case _:
            raise PermanentError(f"{type(payload).__name__} does not belong on the catalog topic")


async def _apply_outbound_result(payload: Payload, uow: UnitOfWork) -> None:
    match payload:
        case outbound.PennylaneIdAssigned():
            await outbound_results.apply_id_assigned(payload, uow)
        case outbound.PennylaneWriteFailed():
            await outbound_results.apply_write_failed(payload, uow)
        case _:
            raise PermanentError(f"{type(payload).__name__} is not an outbound result")


async def _apply_sync_run(payload: Payload, uow: UnitOfWork) -> None:
    if not isinstance(payload, poller.SyncRunFinished):
        raise PermanentError(f"{type(payload).__name__} is not a sync run")
    await problems.apply_sync_run(payload, uow)


async def _apply_connection_event(payload: Payload, uow: UnitOfWork) -> None:
    if not isinstance(payload, connections.ConnectionRepointed):
        raise PermanentError(f"{type(payload).__name__} is not a connection event")
    await uow.repo.forget_pennylane_links()


def event_handler(
    topic_prefix: str, apply: Callable[[Payload, UnitOfWork], Awaitable[None]]
) -> EventHandler:
    async def handle(session: AsyncSession, event: Envelope[Payload]) -> None:
        async with UnitOfWork(
            session, event.tenant_id, topic_prefix=topic_prefix, caused_by=event.meta
        ) as uow:
            try:
                await apply(event.payload, uow)
            except DomainError as exc:
                raise PermanentError(str(exc)) from exc
            await uow.commit()

    return handle


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    settings = settings or InventorySettings()
    prefix = settings.topic_prefix

    def setup(runtime: ServiceRuntime) -> None:
        runtime.subscribe(
            PENNYLANE_DOCUMENTS,
            event_handler(prefix, _apply_document),
            purpose="documents",
            max_batch=settings.documents_batch_size,
            batch_handler=documents_batch_handler(prefix),
            consumers=settings.documents_consumers,
        )
        runtime.subscribe(
            PENNYLANE_CATALOG, event_handler(prefix, _apply_catalog), purpose="catalog"
        )
        runtime.subscribe(
            OUTBOUND_RESULTS,
            event_handler(prefix, _apply_outbound_result),
            purpose="outbound-results",
        )
        runtime.subscribe(
            POLLER_SYNC_RUNS,
            event_handler(prefix, _apply_sync_run),
            purpose="sync-runs",
        )
        runtime.subscribe(
            CONNECTION_EVENTS,
            event_handler(prefix, _apply_connection_event),
            purpose="connection-events",
        )
        runtime.publishes(INVENTORY_STOCK)
        runtime.publishes(INVENTORY_PROBLEMS)
        runtime.publishes(INVENTORY_SETTINGS)
        runtime.publishes(OUTBOUND_REQUESTS)

    app = create_service_app(
        settings,
        title="Stockpit inventory",
        description=(
            "Stock per product and location, orders, deliveries, returns, purchases, products "
            "and customers. Refused commands answer 422 and unknown records 404, with the reason "
            "in `detail`."
        ),
        migrations=MIGRATIONS,
        setup=setup,
        api=api_router,
    )

    async def refused(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def not_found(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    app.include_router(reports_router)
    app.add_exception_handler(DomainError, refused)
    app.add_exception_handler(NotFound, not_found)
    return app


def main() -> None:
    settings = InventorySettings()
    serve(create_app(settings), settings)
