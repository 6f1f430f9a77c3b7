"""Reads (cosmicpython's views): the sync report, the tenant's status, the ledger with the
documents' numbers, the stock export, and the records the HTTP API lists. Functions of a unit of
work the caller enters and never commits; nothing here changes state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters import stock_store
from inventory.adapters.codec import decode
from inventory.adapters.orm import order_documents, orders, problems, returns, sync_runs
from inventory.domain import report
from inventory.domain.catalog import Customer, Location, Product, Supplier
from inventory.domain.orders import Order
from inventory.domain.purchases import Purchase
from inventory.domain.report import DocumentLabel, ProblemRecord, ProblemView, ProductLabel
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import CauseKind
from inventory.service_layer.handlers import NotFound
from inventory.service_layer.unit_of_work import UnitOfWork

MAX_PAGE = 500
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """Newest first; `next_after` is the id the next page starts below (None: the last page)."""

    items: list[T]
    next_after: int | None


# -- documents and Stockpit numbers --------------------------------------------------------


async def orders_by_id(
    session: AsyncSession, tenant_id: str, ids: Iterable[UUID]
) -> dict[UUID, Order]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(orders.c.doc).where(
            orders.c.tenant_id == tenant_id, orders.c.order_id.in_(wanted)
        )
    )
    found = [decode(Order, doc) for (doc,) in rows]
    return {order.order_id: order for order in found}


async def returns_by_id(
    session: AsyncSession, tenant_id: str, ids: Iterable[UUID]
) -> dict[UUID, Return]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(
        sa.select(returns.c.doc).where(
            returns.c.tenant_id == tenant_id, returns.c.return_id.in_(wanted)
        )
    )
    found = [decode(Return, doc) for (doc,) in rows]
    return {return_.return_id: return_ for return_ in found}


async def document_labels(
    session: AsyncSession, tenant_id: str, references: Iterable[str | None]
) -> dict[str, DocumentLabel]:
    """Number and date of each Pennylane document named ("invoice:123"), from the order or
    return that holds it; a document not held (e.g. an unknown credited invoice) is absent."""
    wanted = {r for r in references if r is not None and report.is_document_reference(r)}
    if not wanted:
        return {}
    labels: dict[str, DocumentLabel] = {}
    held = await session.execute(
        sa.select(order_documents.c.reference, order_documents.c.order_id).where(
            order_documents.c.tenant_id == tenant_id, order_documents.c.reference.in_(wanted)
        )
    )
    holders = {reference: order_id for reference, order_id in held}
    for order in (await orders_by_id(session, tenant_id, holders.values())).values():
        for reference, source in order.sources.items():
            if reference in wanted:
                labels[reference] = report.source_label(source)
    credit_notes = {
        int(r.partition(":")[2])
        for r in wanted
        if r.startswith("credit_note:") and r.partition(":")[2].isdigit()
    }
    if credit_notes:
        rows = await session.execute(
            sa.select(returns.c.doc).where(
                returns.c.tenant_id == tenant_id, returns.c.credit_note_id.in_(credit_notes)
            )
        )
        for (doc,) in rows:
            credited = decode(Return, doc).source
            if credited is not None:
                labels[credited.reference] = report.source_label(credited)
    return labels


# -- the report ----------------------------------------------------------------------------


async def problem_page(
    uow: UnitOfWork,
    *,
    kinds: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    open_only: bool = False,
    after: int | None = None,
    limit: int = 100,
) -> Page[ProblemView]:
    """Problems newest first, `limit` at most (bounded), below the id `after`."""
    limit = max(1, min(limit, MAX_PAGE))
    query = sa.select(problems).where(problems.c.tenant_id == uow.tenant_id)
    if kinds:
        query = query.where(problems.c.kind.in_(list(kinds)))
    if since is not None:
        query = query.where(problems.c.reported_at >= since)
    if until is not None:
        query = query.where(problems.c.reported_at < until)
    if open_only:
        query = query.where(problems.c.acknowledged_at.is_(None))
    if after is not None:
        query = query.where(problems.c.problem_id < after)
    rows = (
        await uow.session.execute(query.order_by(problems.c.problem_id.desc()).limit(limit + 1))
    ).all()
    records = [
        ProblemRecord(
            problem_id=row.problem_id,
            kind=row.kind,
            reported_at=row.reported_at,
            reason=row.reason,
            subject_kind=row.subject_kind,
            subject_id=row.subject_id,
            product_id=row.product_id,
            location_id=row.location_id,
            document_reference=row.document_reference,
            acknowledged_at=row.acknowledged_at,
            occurrences=row.occurrences,
        )
        for row in rows[:limit]
    ]
    views = await _problem_views(uow, records)
    return Page(views, records[-1].problem_id if len(rows) > limit else None)


async def _problem_views(uow: UnitOfWork, records: list[ProblemRecord]) -> list[ProblemView]:
    session, tenant = uow.session, uow.tenant_id
    product_ids = {UUID(r.product_id) for r in records if r.product_id and _is_uuid(r.product_id)}
    products = {str(p.product_id): p for p in await uow.repo.products(product_ids)}
    locations = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
    # A conflict names its order or return: the report names that record's document.
    subject_orders = await orders_by_id(
        session,
        tenant,
        (
            UUID(r.subject_id)
            for r in records
            if r.subject_kind == "order" and _is_uuid(r.subject_id)
        ),
    )
    subject_returns = await returns_by_id(
        session,
        tenant,
        (
            UUID(r.subject_id)
            for r in records
            if r.subject_kind == "return" and _is_uuid(r.subject_id)
        ),
    )
    labels = await document_labels(session, tenant, (r.document_reference for r in records))
    views = []
    for record in records:
        document = labels.get(record.document_reference or "")
        if document is None and report.is_document_reference(record.document_reference):
            document = DocumentLabel(record.document_reference or "", None, None)
        if document is None and _is_uuid(record.subject_id):
            document = _subject_document(
                subject_orders.get(UUID(record.subject_id)),
                subject_returns.get(UUID(record.subject_id)),
            )
        product = products.get(record.product_id or "")
        views.append(
            report.problem_view(
                record,
                product=ProductLabel(product.name, product.sku) if product else None,
                location_name=locations.get(record.location_id or ""),
                document=document,
            )
        )
    return views


def _subject_document(order: Order | None, return_: Return | None) -> DocumentLabel | None:
    if order is not None:
        source = report.primary_source(order.sources.values())
        return report.source_label(source) if source else None
    if return_ is not None and return_.source is not None:
        return report.source_label(return_.source)
    return None


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class SyncRunView:
    run_id: int
    started_at: datetime
    finished_at: datetime
    streams: list[str]
    documents_published: int
    outcome: str
    error_kind: str | None
    error: str | None

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


async def sync_run_page(
    uow: UnitOfWork,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    after: int | None = None,
    limit: int = 100,
) -> Page[SyncRunView]:
    """Sync runs newest first (by when they ended), `limit` at most, below the id `after`."""
    limit = max(1, min(limit, MAX_PAGE))
    query = sa.select(sync_runs).where(sync_runs.c.tenant_id == uow.tenant_id)
    if since is not None:
        query = query.where(sync_runs.c.finished_at >= since)
    if until is not None:
        query = query.where(sync_runs.c.finished_at < until)
    if after is not None:
        query = query.where(sync_runs.c.run_id < after)
    rows = (
        await uow.session.execute(query.order_by(sync_runs.c.run_id.desc()).limit(limit + 1))
    ).all()
    runs = [
        SyncRunView(
            run_id=row.run_id,
            started_at=row.started_at,
            finished_at=row.finished_at,
            streams=list(row.streams),
            documents_published=row.documents_published,
            outcome=row.outcome,
            error_kind=row.error_kind,
            error=row.error,
        )
        for row in rows[:limit]
    ]
    return Page(runs, runs[-1].run_id if len(rows) > limit else None)


@dataclass(frozen=True)
class TenantStatus:
    open_problems: int
    open_problems_by_kind: dict[str, int]
    last_sync: SyncRunView | None
    needs_new_token: bool


async def tenant_status(uow: UnitOfWork) -> TenantStatus:
    counts = await uow.session.execute(
        sa.select(problems.c.kind, sa.func.count())
        .where(problems.c.tenant_id == uow.tenant_id, problems.c.acknowledged_at.is_(None))
        .group_by(problems.c.kind)
    )
    by_kind = {kind: int(count) for kind, count in counts}
    last = await sync_run_page(uow, limit=1)
    last_run = last.items[0] if last.items else None
    return TenantStatus(
        open_problems=sum(by_kind.values()),
        open_problems_by_kind=dict(sorted(by_kind.items())),
        last_sync=last_run,
        # The last run says whether Pennylane still takes the token; a later success clears it.
        needs_new_token=last_run is not None and last_run.error_kind == "token_rejected",
    )


# -- the ledger with documents' numbers ----------------------------------------------------


@dataclass(frozen=True)
class LedgerDocument:
    """What caused a ledger entry, as a person reads it."""

    document: DocumentLabel | None
    stockpit_number: str | None


async def ledger_documents(
    session: AsyncSession, tenant_id: str, rows: Sequence[Any]
) -> list[LedgerDocument]:
    """For each ledger row (stock_ledger columns), the Pennylane document behind it (its own
    reference, else the document of the order it belongs to) and the Stockpit delivery note or
    receipt number."""
    order_kinds = {
        CauseKind.DELIVERY_NOTE.value,
        CauseKind.ARCHIVE.value,
        CauseKind.CANCEL.value,
        CauseKind.STOCKPIT_ORDER.value,
    }
    subject_orders = await orders_by_id(
        session,
        tenant_id,
        (
            UUID(row.subject_id)
            for row in rows
            if row.cause_kind in order_kinds and row.subject_id and _is_uuid(row.subject_id)
        ),
    )
    labels = await document_labels(session, tenant_id, (row.reference for row in rows))
    documents = []
    for row in rows:
        document = labels.get(row.reference or "")
        if document is None and report.is_document_reference(row.reference):
            document = DocumentLabel(row.reference or "", None, None)
        if document is None and row.subject_id and _is_uuid(row.subject_id):
            document = _subject_document(subject_orders.get(UUID(row.subject_id)), None)
        number: str | None = None
        if row.reference and _is_uuid(row.reference):
            if row.cause_kind == CauseKind.DELIVERY_NOTE.value:
                number = report.delivery_note_number(UUID(row.reference))
            elif row.cause_kind == CauseKind.RECEIPT.value:
                number = report.receipt_number(UUID(row.reference))
        documents.append(LedgerDocument(document, number))
    return documents


# -- stock export --------------------------------------------------------------------------


@dataclass(frozen=True)
class StockLine:
    product_id: str
    product_name: str | None
    sku: str | None
    location_id: str
    location_name: str | None
    real: Decimal
    reserved: Decimal
    available: Decimal
    incoming: Decimal


async def stock_lines(uow: UnitOfWork) -> list[StockLine]:
    """Every product × location that has a level, by product name then location name."""
    rows = await stock_store.levels(uow.session, uow.tenant_id)
    locations = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
    products = {
        str(p.product_id): p for p in await uow.repo.products({UUID(r.product_id) for r in rows})
    }
    lines = [
        StockLine(
            product_id=row.product_id,
            product_name=products[row.product_id].name if row.product_id in products else None,
            sku=products[row.product_id].sku if row.product_id in products else None,
            location_id=row.location_id,
            location_name=locations.get(row.location_id),
            real=row.real,
            reserved=row.reserved,
            available=row.available,
            incoming=row.incoming,
        )
        for row in rows
    ]
    return sorted(lines, key=lambda s: (s.product_name or "", s.sku or "", s.location_name or ""))


# -- Stockpit's records, stock and ledger (the HTTP API's reads) ---------------------------


async def settings(uow: UnitOfWork) -> TenantSettings | None:
    """The tenant's settings as stored; `None` for a tenant never changed (a read writes
    nothing)."""
    return await uow.repo.settings()


async def locations(uow: UnitOfWork) -> list[Location]:
    return await uow.repo.locations()


async def products(uow: UnitOfWork, *, include_deleted: bool) -> list[Product]:
    return [p for p in await uow.repo.products() if include_deleted or not p.deleted]


async def customers(uow: UnitOfWork) -> list[Customer]:
    return await uow.repo.customers()


async def suppliers(uow: UnitOfWork) -> list[Supplier]:
    return await uow.repo.suppliers()


async def orders_of_tenant(uow: UnitOfWork, *, status: str | None) -> list[Order]:
    return await uow.repo.orders(status=status)


async def order(uow: UnitOfWork, order_id: UUID) -> Order:
    found = await uow.repo.order(order_id)
    if found is None:
        raise NotFound(f"order {order_id} not found")
    return found


async def returns_of_tenant(uow: UnitOfWork) -> list[Return]:
    return await uow.repo.returns()


async def purchases(uow: UnitOfWork) -> list[Purchase]:
    return await uow.repo.purchases()


async def write_statuses(uow: UnitOfWork, *, failed_only: bool) -> Sequence[Any]:
    """What the outbound service reported about writes to Pennylane, by record."""
    return await uow.repo.write_statuses(failed_only=failed_only)


@dataclass(frozen=True)
class StockRowView:
    level: stock_store.LevelRow
    product: Product | None
    location_name: str | None


async def stock_levels(
    uow: UnitOfWork,
    *,
    product_id: UUID | None,
    location_id: UUID | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[StockRowView]:
    """Up to `limit` levels after `after` (product, location), in that order, with the
    product and the location's name."""
    rows = await stock_store.levels(
        uow.session,
        uow.tenant_id,
        product_id=product_id,
        location_id=location_id,
        after=after,
        limit=limit,
    )
    names = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
    found = {
        str(p.product_id): p for p in await uow.repo.products({UUID(r.product_id) for r in rows})
    }
    return [
        StockRowView(row, found.get(row.product_id), names.get(row.location_id)) for row in rows
    ]


@dataclass(frozen=True)
class LedgerRowView:
    entry: Any  # a stock_ledger row
    location_name: str | None
    cause: LedgerDocument


async def ledger_page(
    uow: UnitOfWork, product_id: UUID, *, before_id: int | None, limit: int
) -> list[LedgerRowView]:
    """Up to `limit` ledger entries of the product before `before_id`, newest first, with the
    location's name and the document or Stockpit number behind each."""
    rows = await stock_store.ledger(
        uow.session, uow.tenant_id, product_id, limit=limit, before_id=before_id
    )
    names = {str(loc.location_id): loc.name for loc in await uow.repo.locations()}
    causes = await ledger_documents(uow.session, uow.tenant_id, rows)
    return [
        LedgerRowView(row, names.get(row.location_id), cause)
        for row, cause in zip(rows, causes, strict=True)
    ]


async def reconciliation(uow: UnitOfWork) -> list[stock_store.Mismatch]:
    """Levels against the sum of the ledger (rule 6): the pairs that differ."""
    return await stock_store.reconcile(uow.session, uow.tenant_id)
