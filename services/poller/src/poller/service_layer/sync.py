"""One sync of one tenant: products, customers, invoices and credit notes, purchase orders.

Every page is committed in ONE transaction holding (a) the events, staged in the outbox, (b) the
stream's new watermark, (c) what was published (kinds and versions), under (d) the tenant's lease.
The outbox relay publishes with acks=all and idempotence and deletes a row only after Kafka
acknowledged it, so a watermark never covers an event that could be lost: a crash before the
commit re-reads the page, a crash after it re-publishes from the outbox. Re-reads, never skips.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload, new_event, partition_key
from stockpit_contracts.payloads.catalog import CustomerDeleted, ProductDeleted
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_contracts.sizes import MessageTooLarge, ensure_fits
from stockpit_contracts.topics import PENNYLANE_CATALOG, PENNYLANE_DOCUMENTS, Topic
from stockpit_pennylane.client import (
    ChangelogExpired,
    ChangelogResource,
    Filter,
    PennylaneClient,
)
from stockpit_pennylane.client.models import (
    ChangelogEvent,
    CommercialDocument,
    CompanyCustomer,
    CustomerInvoiceWithLines,
    IndividualCustomer,
    Product,
)
from stockpit_runtime import tracing
from stockpit_runtime.consumer import record_dead_letter
from stockpit_runtime.logging import get_logger
from stockpit_runtime.outbox import add_to_outbox

from poller.adapters import state
from poller.adapters.gate import SyncGate
from poller.adapters.metrics import DOCUMENTS_READ, EVENTS_PUBLISHED
from poller.domain.mapping import (
    PURCHASE_ORDER_TYPE,
    CustomerSnapshot,
    ProductSnapshot,
    customer_snapshot,
    customer_upserted,
    invoice_version,
    product_snapshot,
    product_upserted,
    purchase_order_version,
)
from poller.domain.recheck import RecheckCursor, cursor_after, plan_recheck, recheck_changes
from poller.domain.watermarks import (
    ChangeSet,
    Phase,
    Stream,
    StreamState,
    purchase_order_changes,
)
from poller.service_layer.first_sync import FirstSyncPacing
from poller.service_layer.unit_of_work import UnitOfWork

log = get_logger(__name__)
T = TypeVar("T")

INVOICE_SOURCE = "customer_invoice"
PURCHASE_ORDER_SOURCE = "commercial_document"
Customer = CompanyCustomer | IndividualCustomer


class SyncStopped(Exception):
    """The tenant was disconnected while its sync ran: stop reading at once."""


@dataclass(frozen=True, slots=True)
class SyncLimits:
    page_size: int = 100
    changelog_page_size: int = 1000
    # How many of the newest purchase orders are listed again on every sync to find changed
    # ones; older ones are re-read over the syncs (see poller.domain.recheck).
    purchase_order_window: int = 200
    # A full scan's changelog resumes this long before Pennylane's time at its start: room for
    # Pennylane's own servers' clocks (the changelog's `processed_at` against the `Date` of the
    # answer it was read from) and the `Date`'s whole seconds.
    changelog_start_margin: dt.timedelta = dt.timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Lease:
    tenant_id: str
    owner: str
    version: int


@dataclass
class PageCommit:
    """What one page changes, committed at once."""

    topic: Topic
    stream: Stream
    events: list[Envelope[Payload]] = field(default_factory=list)
    stream_state: StreamState | None = None
    published: dict[int, tuple[str, dt.datetime]] = field(default_factory=dict)
    unpublished: list[int] = field(default_factory=list)
    recheck: RecheckCursor | None = None
    source: str = ""
    read: int = 0


async def batched(items: AsyncIterator[T], size: int) -> AsyncIterator[list[T]]:
    """Group an item stream into lists; the client reads page by page, so memory stays flat."""
    batch: list[T] = []
    async for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_END = object()


async def _next_or_end(items: AsyncIterator[T]) -> T | object:
    try:
        return await anext(items)
    except StopAsyncIteration:
        return _END


async def read_ahead(pages: AsyncIterator[T]) -> AsyncGenerator[T, None]:
    """`pages`, with the request for the next page sent while the caller processes and commits
    the one it was given: a page's read no longer waits for the previous page's commit. One page
    ahead at most (memory stays one page, the token's pacing still spaces the requests). The
    caller still takes the pages one by one and commits each before taking the next, so a
    watermark never covers a page whose events are not committed; a read that fails (a closed
    gate, Pennylane) raises when its page is taken, after the pages before it were committed.
    Close it (`aclosing`) so that a sync that stops early cancels the read in flight."""
    ahead = asyncio.ensure_future(_next_or_end(pages))
    try:
        while (page := await ahead) is not _END:
            ahead = asyncio.ensure_future(_next_or_end(pages))
            yield cast(T, page)
    finally:
        if not ahead.done():
            ahead.cancel()
        await asyncio.wait({ahead})
        if not ahead.cancelled():
            ahead.exception()  # retrieved: the sync already stops for its own reason
        if isinstance(pages, AsyncGenerator):
            await pages.aclose()


def _chunks(ids: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


class TenantSync:
    def __init__(
        self,
        *,
        new_uow: Callable[[], UnitOfWork],
        client: PennylaneClient,
        lease: Lease,
        settings: ConnectionSettings,
        interval: dt.timedelta,
        topic_prefix: str,
        limits: SyncLimits,
        gate: SyncGate,
        first_sync: FirstSyncPacing | None = None,
    ) -> None:
        """`first_sync`: paces the run at the first-sync share while a stream has not been
        scanned yet (see `poller.service_layer.first_sync`)."""
        self._first_sync = first_sync
        self._uow = new_uow
        self._client = client
        self._lease = lease
        self._tenant = lease.tenant_id
        self._settings = settings
        self._interval = interval
        self._prefix = topic_prefix
        self._limits = limits
        self._gate = gate
        # Document events committed by this run (told to inventory for the tenant's report).
        self.documents_published = 0
        # Every stream's watermark, read once per sync and kept current by `_commit`.
        self._streams: dict[Stream, StreamState] = {}
        # Records this run's scan read that changed near or after its changelog start, with the
        # `updated_at` it published: the changelog that follows the scan names them again.
        self._scanned: dict[Stream, dict[int, dt.datetime]] = {}

    async def run(self, streams: frozenset[Stream] = frozenset(Stream)) -> None:
        """Read `streams` (every one on schedule; import-now may name fewer), catalog first so
        document lines find their products and customers already known."""
        async with self._uow() as uow:
            self._streams = await state.load_streams(uow.session, self._tenant)
        pacing = self._first_sync if not self._all_scanned() else None
        if pacing is not None:
            await pacing.begin()
        try:
            await self._read(streams)
        finally:
            if pacing is not None:
                pacing.lower()
        if pacing is not None and self._all_scanned():
            await pacing.finish()

    def _all_scanned(self) -> bool:
        return all(self._load_stream(s).phase is Phase.FOLLOWING for s in Stream)

    async def _read(self, streams: frozenset[Stream]) -> None:
        changelogs = (
            (Stream.PRODUCTS, ChangelogResource.PRODUCTS),
            (Stream.CUSTOMERS, ChangelogResource.CUSTOMERS),
            (Stream.CUSTOMER_INVOICES, ChangelogResource.CUSTOMER_INVOICES),
        )
        # With tracing on, one trace per stream read: its Pennylane requests and the events
        # it stages (which carry the trace on to their consumers).
        for stream, resource in changelogs:
            if stream in streams:
                with tracing.span(f"poller sync {stream.value}", tenant_id=self._tenant):
                    await self._changelog_stream(stream, resource)
        if Stream.PURCHASE_ORDERS in streams:
            with tracing.span(
                f"poller sync {Stream.PURCHASE_ORDERS.value}", tenant_id=self._tenant
            ):
                await self._purchase_orders()

    # --- plumbing -------------------------------------------------------------------------------

    async def _checkpoint(self) -> None:
        """Between pages: a closed gate (a disconnect, a lost lease) stops the sync here; it also
        stops it before any request (see `poller.adapters.gate`). No database read: every commit
        checks the lease and the tenant's `active` under the row lock (`state.hold_lease`), so a
        disconnect that another replica handled stops this sync at its next commit at the latest,
        and its gate at the next scheduler tick."""
        self._gate.check()

    def _event(self, payload: Payload) -> Envelope[Payload]:
        return new_event(payload, self._tenant)

    async def _commit(self, page: PageCommit) -> None:
        now = dt.datetime.now(dt.UTC)
        async with self._uow() as uow:
            await state.hold_lease(
                uow.session, self._tenant, self._lease.owner, self._lease.version, now
            )
            topic, key = page.topic.name(self._prefix), partition_key(self._tenant)
            try:
                await add_to_outbox(uow.session, topic, key, page.events)
            except MessageTooLarge:
                page.events = await self._set_aside_too_large(uow.session, topic, key, page.events)
                await add_to_outbox(uow.session, topic, key, page.events)
            await state.record_published(uow.session, self._tenant, page.source, page.published)
            await state.forget_published(uow.session, self._tenant, page.source, page.unpublished)
            if page.stream_state is not None:
                await state.save_stream(uow.session, self._tenant, page.stream, page.stream_state)
            if page.recheck is not None:
                await state.save_recheck(uow.session, self._tenant, page.recheck)
            await uow.commit()
        if page.topic is PENNYLANE_DOCUMENTS:
            self.documents_published += len(page.events)
        if page.stream_state is not None:
            self._streams[page.stream] = page.stream_state
        if page.events:
            EVENTS_PUBLISHED.labels(page.stream.value).inc(len(page.events))
        if page.read:
            DOCUMENTS_READ.labels(page.stream.value).inc(page.read)

    async def _set_aside_too_large(
        self, session: AsyncSession, topic: str, key: bytes, events: list[Envelope[Payload]]
    ) -> list[Envelope[Payload]]:
        """A Pennylane record whose event cannot be a Kafka message (thousands of lines) is kept
        as a dead letter of `poller.sync` (offset: its Pennylane id), with the reason, and the
        page goes on without it: one record never stops a tenant's sync. A later version of
        the record is tried again."""
        kept = []
        for event in events:
            body = event.to_json()
            try:
                ensure_fits(event.event_type, body)
            except MessageTooLarge as exc:
                pennylane_id = int(getattr(event.payload, "pennylane_id", 0))
                log.error(
                    "a Pennylane record is too large to publish; kept as a dead letter",
                    tenant_id=self._tenant,
                    event_type=event.event_type,
                    pennylane_id=pennylane_id,
                    size=exc.size,
                    field=exc.field,
                )
                await record_dead_letter(
                    session,
                    service="poller",
                    consumer_group="poller.sync",
                    topic=topic,
                    partition=-1,
                    offset=pennylane_id,
                    key=key,
                    value=body,
                    headers=event.headers(),
                    tenant=self._tenant,
                    error_type=type(exc).__name__,
                    reason=str(exc),
                    attempts=1,
                )
            else:
                kept.append(event)
        return kept

    def _load_stream(self, stream: Stream) -> StreamState:
        return self._streams.get(stream, StreamState())

    # --- generic changelog stream ----------------------------------------------------------------

    async def _changelog_stream(self, stream: Stream, resource: ChangelogResource) -> None:
        current = self._load_stream(stream)
        if current.phase is Phase.NEW:
            resume_from, changed_then = await self._changelog_head(resource)
            # Pennylane's time when the scan starts: the changelog start plus the margin, plus
            # the second the `Date` it came from was truncated to.
            started_at = (
                None
                if resume_from is None
                else resume_from + self._limits.changelog_start_margin + dt.timedelta(seconds=1)
            )
            current = current.scan_started(resume_from, changed_then, started_at)
            await self._commit(PageCommit(self._topic(stream), stream, stream_state=current))
        if current.phase is Phase.SCANNING:
            async with aclosing(read_ahead(self._scan(stream, current.after_id))) as pages:
                async for records in pages:
                    await self._checkpoint()
                    current = current.scanned_through(max(self._record_id(r) for r in records))
                    self._note_scanned(stream, current.changelog_from, records)
                    page = await self._page_of_records(stream, records)
                    page.stream_state = current
                    await self._commit(page)
            current = current.scan_finished()
            await self._commit(PageCommit(self._topic(stream), stream, stream_state=current))
        try:
            await self._follow(stream, resource, current)
        except ChangelogExpired:
            await self._commit(
                PageCommit(self._topic(stream), stream, stream_state=current.changelog_expired())
            )
            await self._changelog_stream(stream, resource)

    async def _changelog_head(
        self, resource: ChangelogResource
    ) -> tuple[dt.datetime | None, set[int]]:
        """Where the changelog resumes once the scan is over: Pennylane's time now (its `Date`,
        not our clock) less a margin. Every change the scan may miss, made after it read the
        record, is processed after this instant and so read from the changelog; changes in the
        margin before the scan are read twice, which the dedup absorbs (an invoice whose version
        was published is not published again). One request, whatever the changelog holds."""
        now = await self._client.changelog_now(resource)
        return now - self._limits.changelog_start_margin, set()

    async def _follow(
        self,
        stream: Stream,
        resource: ChangelogResource,
        current: StreamState,
    ) -> None:
        async for events in self._client.iter_changelog_pages(
            resource, since=current.changelog_from, page_size=self._limits.changelog_page_size
        ):
            await self._checkpoint()
            fresh = [event for event in events if current.is_new(event)]
            if not fresh:
                continue
            changes = ChangeSet.from_events(fresh)
            records = await self._fetch(stream, self._unread(stream, fresh, changes.upserted_ids))
            if current.scan_started_at is not None:
                # Kept in the stream's state: a run that resumes the follow after a crash leaves
                # them out too.
                records = self._left_out_by_the_scan(
                    stream, records, fresh, current.scan_started_at
                )
            page = await self._page_of_records(stream, records)
            page.events += await self._deletions(stream, changes.deleted_ids, page)
            current = current.followed_through(fresh)
            page.stream_state = current
            await self._commit(page)

    def _note_scanned(
        self, stream: Stream, changelog_from: dt.datetime | None, records: list[Any]
    ) -> None:
        if changelog_from is None:
            return
        # A change's event may enter the changelog a little after the record's update.
        since = changelog_from - self._limits.changelog_start_margin
        scanned = self._scanned.setdefault(stream, {})
        for record in records:
            updated_at = self._record_updated_at(record)
            if updated_at >= since:
                scanned[self._record_id(record)] = updated_at

    def _unread(
        self, stream: Stream, events: Sequence[ChangelogEvent], upserted_ids: Sequence[int]
    ) -> list[int]:
        """`upserted_ids` less the records whose newest event here names the very version
        this run's scan published (same `updated_at`): fetching them would publish nothing new.
        A record the scan did not read, or read at another version, is fetched."""
        scanned = self._scanned.get(stream)
        if not scanned:
            return list(upserted_ids)
        newest = {event.id: event.updated_at for event in events}
        return [i for i in upserted_ids if scanned.get(i) != newest[i]]

    def _left_out_by_the_scan(
        self,
        stream: Stream,
        records: list[Any],
        events: Sequence[ChangelogEvent],
        scan_start: dt.datetime,
    ) -> list[Any]:
        """`records` less the invoices dated before `documents_since` whose newest change was
        processed before the scan started: the scan left them out on purpose (rule 17), and
        they come again only because the changelog resumes a margin before the scan."""
        since = self._settings.documents_since
        if stream is not Stream.CUSTOMER_INVOICES or since is None:
            return records
        processed = {event.id: event.processed_at for event in events}
        return [
            r
            for r in records
            if processed.get(r.invoice.id, scan_start) >= scan_start
            or r.invoice.date is None
            or r.invoice.date >= since
        ]

    def _topic(self, stream: Stream) -> Topic:
        return PENNYLANE_DOCUMENTS if stream is Stream.CUSTOMER_INVOICES else PENNYLANE_CATALOG

    @staticmethod
    def _record_updated_at(record: Any) -> dt.datetime:
        if isinstance(record, CustomerInvoiceWithLines):
            return record.invoice.updated_at
        updated_at: dt.datetime = record.updated_at
        return updated_at

    @staticmethod
    def _record_id(record: Any) -> int:
        if isinstance(record, CustomerInvoiceWithLines):
            return record.invoice.id
        identifier: int = record.id
        return identifier

    async def _scan(self, stream: Stream, after_id: int) -> AsyncIterator[list[Any]]:
        size = self._limits.page_size
        if stream is Stream.PRODUCTS:
            async for products in batched(
                self._client.iter_products(
                    filters=[Filter.gt("id", after_id)], sort="id", page_size=size
                ),
                size,
            ):
                yield products
        elif stream is Stream.CUSTOMERS:
            async for customers in batched(
                self._client.iter_customers(
                    filters=[Filter.gt("id", after_id)], sort="id", page_size=size
                ),
                size,
            ):
                yield customers
        else:
            filters = [Filter.gt("id", after_id)]
            if self._settings.documents_since is not None:
                filters.append(Filter.gteq("date", self._settings.documents_since))
            async for invoices in self._client.iter_customer_invoice_pages_with_lines(
                filters=filters, sort="id", page_size=size
            ):
                if invoices:
                    yield invoices

    async def _fetch(self, stream: Stream, ids: Sequence[int]) -> list[Any]:
        if not ids:
            return []
        if stream is Stream.CUSTOMER_INVOICES:
            return await self._client.fetch_customer_invoices_with_lines(ids)
        found: list[Any] = []
        for chunk in _chunks(sorted(ids), self._limits.page_size):
            filters = [Filter.in_("id", chunk)]
            if stream is Stream.PRODUCTS:
                found += [p async for p in self._client.iter_products(filters=filters)]
            else:
                found += [c async for c in self._client.iter_customers(filters=filters)]
        return found

    async def _page_of_records(self, stream: Stream, records: list[Any]) -> PageCommit:
        page = PageCommit(self._topic(stream), stream, read=len(records))
        if stream is Stream.PRODUCTS:
            products: list[Product] = records
            numbers = await self._ledger_numbers(
                {p.ledger_account.id for p in products if p.ledger_account}
            )
            snapshots = []
            for product in products:
                number = numbers.get(product.ledger_account.id) if product.ledger_account else None
                snapshots.append(product_snapshot(product, number))
                page.events.append(self._event(product_upserted(product, number)))
            await self._save_snapshots(products=snapshots)
        elif stream is Stream.CUSTOMERS:
            customers: list[Customer] = records
            await self._save_snapshots(customers=[customer_snapshot(c) for c in customers])
            page.events += [self._event(customer_upserted(c)) for c in customers]
        else:
            await self._invoice_events(records, page)
        return page

    async def _invoice_events(
        self, invoices: list[CustomerInvoiceWithLines], page: PageCommit
    ) -> None:
        page.source = INVOICE_SOURCE
        # One session for the published versions and the snapshots the new ones name.
        async with self._uow() as uow:
            already = await state.published(
                uow.session, self._tenant, INVOICE_SOURCE, (i.invoice.id for i in invoices)
            )
            fresh = [
                i
                for i in invoices
                if i.invoice.id not in already or already[i.invoice.id][1] != i.invoice.updated_at
            ]
            wanted_products = {line.product.id for i in fresh for line in i.lines if line.product}
            wanted_customers = {i.invoice.customer.id for i in fresh if i.invoice.customer}
            known = await self._known_snapshots(uow.session, wanted_products, wanted_customers)
        products, customers = await self._complete_snapshots(*known)
        for item in fresh:
            version = invoice_version(item.invoice, item.lines, products, customers)
            page.events.append(self._event(version))
            page.published[item.invoice.id] = (version.kind.value, item.invoice.updated_at)

    async def _deletions(
        self, stream: Stream, ids: Sequence[int], page: PageCommit
    ) -> list[Envelope[Payload]]:
        if not ids:
            return []
        now = dt.datetime.now(dt.UTC)
        if stream is Stream.PRODUCTS:
            return [self._event(ProductDeleted(pennylane_id=i, deleted_at=now)) for i in ids]
        if stream is Stream.CUSTOMERS:
            return [self._event(CustomerDeleted(pennylane_id=i, deleted_at=now)) for i in ids]
        async with self._uow() as uow:
            known = await state.published(uow.session, self._tenant, INVOICE_SOURCE, ids)
        # A document never published moved nothing downstream: nothing to reverse.
        page.unpublished += list(known)
        return [
            self._event(DocumentDeleted(kind=DocumentKind(kind), pennylane_id=i, deleted_at=now))
            for i, (kind, _updated_at) in known.items()
        ]

    # --- snapshots for enriching document lines --------------------------------------------------

    async def _save_snapshots(
        self,
        products: Iterable[ProductSnapshot] = (),
        customers: Iterable[CustomerSnapshot] = (),
    ) -> None:
        async with self._uow() as uow:
            await state.save_products(uow.session, self._tenant, products)
            await state.save_customers(uow.session, self._tenant, customers)
            await uow.commit()

    async def _ledger_numbers(self, account_ids: set[int]) -> dict[int, str]:
        async with self._uow() as uow:
            numbers = await state.load_ledger_accounts(uow.session, self._tenant, account_ids)
        if account_ids - numbers.keys():
            # One request lists up to 1000 accounts: cheaper than one GET per unknown account.
            every = {a.id: a.number async for a in self._client.iter_ledger_accounts()}
            async with self._uow() as uow:
                await state.save_ledger_accounts(uow.session, self._tenant, every)
                await uow.commit()
            numbers = {i: every[i] for i in account_ids if i in every}
        return numbers

    async def _named(
        self, product_ids: Iterable[int], customer_ids: Iterable[int]
    ) -> tuple[dict[int, ProductSnapshot], dict[int, CustomerSnapshot]]:
        """The snapshots of the products and customers that documents name, read in one
        session; those not seen yet are fetched from Pennylane and kept."""
        wanted_products, wanted_customers = set(product_ids), set(customer_ids)
        if not wanted_products and not wanted_customers:
            return {}, {}
        async with self._uow() as uow:
            known = await self._known_snapshots(uow.session, wanted_products, wanted_customers)
        return await self._complete_snapshots(*known)

    async def _known_snapshots(
        self, session: AsyncSession, product_ids: set[int], customer_ids: set[int]
    ) -> tuple[set[int], set[int], dict[int, ProductSnapshot], dict[int, CustomerSnapshot]]:
        products = await state.load_products(session, self._tenant, product_ids)
        customers = await state.load_customers(session, self._tenant, customer_ids)
        return product_ids, customer_ids, products, customers

    async def _complete_snapshots(
        self,
        wanted_products: set[int],
        wanted_customers: set[int],
        products: dict[int, ProductSnapshot],
        customers: dict[int, CustomerSnapshot],
    ) -> tuple[dict[int, ProductSnapshot], dict[int, CustomerSnapshot]]:
        """The snapshots read, with those not seen yet fetched from Pennylane and kept."""
        missing_products = sorted(wanted_products - products.keys())
        if missing_products:
            fetched: list[Product] = await self._fetch(Stream.PRODUCTS, missing_products)
            numbers = await self._ledger_numbers(
                {p.ledger_account.id for p in fetched if p.ledger_account}
            )
            snapshots = [
                product_snapshot(p, numbers.get(p.ledger_account.id) if p.ledger_account else None)
                for p in fetched
            ]
            await self._save_snapshots(products=snapshots)
            products.update({s.pennylane_id: s for s in snapshots})
        missing_customers = sorted(wanted_customers - customers.keys())
        if missing_customers:
            found: list[Customer] = await self._fetch(Stream.CUSTOMERS, missing_customers)
            customer_snapshots = [customer_snapshot(c) for c in found]
            await self._save_snapshots(customers=customer_snapshots)
            customers.update({s.pennylane_id: s for s in customer_snapshots})
        return products, customers

    # --- purchase orders ------------------------------------------------------------------------

    async def _purchase_orders(self) -> None:
        """New ones, then a bounded re-scan of the newest ones for changes and deletions (NOTES
        §7: no changelog, no updated_at filter). The re-scan's listing of the newest ones, read
        first, also brings the new ones when it reaches down to the watermark (one request for
        both); otherwise (a first sync, or more new ones than the window holds) the new ones
        are read by id watermark (ascending, restartable) and the window is listed after them."""
        current = self._load_stream(Stream.PURCHASE_ORDERS)
        window: list[CommercialDocument] | None = None
        complete = False
        if current.phase is Phase.FOLLOWING:
            window, complete = await self._purchase_order_window()
            if complete or min(d.id for d in window) <= current.after_id:
                await self._new_purchase_orders_from(window, current)
            else:
                window = None
        if window is None:
            await self._new_purchase_orders(current)
            await self._checkpoint()
            window, complete = await self._purchase_order_window()
        await self._checkpoint()
        await self._rescan_purchase_orders(window, complete)
        await self._checkpoint()
        await self._recheck_purchase_orders()

    async def _new_purchase_orders_from(
        self, window: list[CommercialDocument], current: StreamState
    ) -> None:
        """The window's purchase orders above the watermark, committed in ascending pages."""
        new = sorted((d for d in window if d.id > current.after_id), key=lambda d: d.id)
        size = self._limits.page_size
        for start in range(0, len(new), size):
            await self._checkpoint()
            documents = new[start : start + size]
            page = await self._purchase_order_page(documents)
            page.read = len(documents)
            current = StreamState(Phase.FOLLOWING, documents[-1].id)
            page.stream_state = current
            await self._commit(page)

    async def _new_purchase_orders(self, current: StreamState) -> None:
        first_sync = current.phase is Phase.NEW
        since = self._settings.documents_since
        size = self._limits.page_size
        type_filter = Filter.eq("document_type", PURCHASE_ORDER_TYPE)
        async for documents in batched(
            self._client.iter_commercial_documents(
                filters=[type_filter, Filter.gt("id", current.after_id)], sort="id", page_size=size
            ),
            size,
        ):
            await self._checkpoint()
            wanted = [
                d
                for d in documents
                if not (first_sync and since and d.date is not None and d.date < since)
            ]
            page = await self._purchase_order_page(wanted)
            page.read = len(documents)
            current = StreamState(
                Phase.FOLLOWING, max(current.after_id, *(d.id for d in documents))
            )
            page.stream_state = current
            await self._commit(page)
        if current.phase is Phase.NEW:
            current = StreamState(Phase.FOLLOWING, current.after_id)
            await self._commit(
                PageCommit(PENNYLANE_DOCUMENTS, Stream.PURCHASE_ORDERS, stream_state=current)
            )

    async def _purchase_order_window(self) -> tuple[list[CommercialDocument], bool]:
        """The newest purchase orders (`SyncLimits.purchase_order_window`), newest first, and
        whether the listing reached the oldest one."""
        limit = self._limits.purchase_order_window
        window: list[CommercialDocument] = []
        async for document in self._client.iter_commercial_documents(
            filters=[Filter.eq("document_type", PURCHASE_ORDER_TYPE)],
            sort="-id",
            page_size=min(limit, 100),
        ):
            window.append(document)
            if len(window) >= limit:
                break
        return window, len(window) < limit

    async def _rescan_purchase_orders(
        self, window: list[CommercialDocument], complete: bool
    ) -> None:
        if not window:
            # No purchase order at all: none published can be in an empty id range (0, 0).
            return
        highest = max(d.id for d in window)
        lowest = 0 if complete else min(d.id for d in window)
        async with self._uow() as uow:
            known = await state.published_between(
                uow.session, self._tenant, PURCHASE_ORDER_SOURCE, lowest, highest
            )
        changes = purchase_order_changes(
            [(d.id, d.updated_at) for d in window], known, window_is_complete=complete
        )
        by_id = {d.id: d for d in window}
        page = await self._purchase_order_page([by_id[i] for i in changes.changed_ids])
        now = dt.datetime.now(dt.UTC)
        page.events += [
            self._event(
                DocumentDeleted(kind=DocumentKind.PURCHASE_ORDER, pennylane_id=i, deleted_at=now)
            )
            for i in changes.deleted_ids
        ]
        page.unpublished = list(changes.deleted_ids)
        if page.events:
            await self._commit(page)

    async def _recheck_purchase_orders(self) -> None:
        """Re-read this sync's share of the published purchase orders, by id, newest first
        (rule 14: any age, within a day; see `poller.domain.recheck`)."""
        size = self._limits.page_size
        async with self._uow() as uow:
            cursor, count = await state.load_recheck(
                uow.session, self._tenant, PURCHASE_ORDER_SOURCE
            )
            plan = plan_recheck(cursor, count, dt.datetime.now(dt.UTC), self._interval, size)
            if plan.quota == 0:
                return
            known = await state.published_below(
                uow.session, self._tenant, PURCHASE_ORDER_SOURCE, plan.below_id, plan.quota
            )
        ids = sorted(known, reverse=True)
        type_filter = Filter.eq("document_type", PURCHASE_ORDER_TYPE)
        for start in range(0, len(ids), size):
            await self._checkpoint()
            chunk = ids[start : start + size]
            found = [
                d
                async for d in self._client.iter_commercial_documents(
                    filters=[type_filter, Filter.in_("id", chunk)], page_size=size
                )
            ]
            changes = recheck_changes(
                {i: known[i] for i in chunk}, [(d.id, d.updated_at) for d in found]
            )
            by_id = {d.id: d for d in found}
            page = await self._purchase_order_page([by_id[i] for i in changes.changed_ids])
            page.read = len(found)
            now = dt.datetime.now(dt.UTC)
            page.events += [
                self._event(
                    DocumentDeleted(
                        kind=DocumentKind.PURCHASE_ORDER, pennylane_id=i, deleted_at=now
                    )
                )
                for i in changes.deleted_ids
            ]
            page.unpublished = list(changes.deleted_ids)
            # The cursor moves with the page it covers: a crash re-reads at most this page.
            partway = start + size < len(ids)
            page.recheck = cursor_after(plan, ids[: start + size], partway=partway)
            await self._commit(page)
        if not ids:
            await self._commit(
                PageCommit(
                    PENNYLANE_DOCUMENTS,
                    Stream.PURCHASE_ORDERS,
                    source=PURCHASE_ORDER_SOURCE,
                    recheck=cursor_after(plan, []),
                )
            )

    async def _purchase_order_page(self, documents: Sequence[CommercialDocument]) -> PageCommit:
        page = PageCommit(PENNYLANE_DOCUMENTS, Stream.PURCHASE_ORDERS, source=PURCHASE_ORDER_SOURCE)
        # No include=invoice_lines on commercial documents: one lines request per document.
        lines = {
            d.id: [line async for line in self._client.iter_commercial_document_lines(d.id)]
            for d in documents
        }
        products, customers = await self._named(
            (line.product.id for ls in lines.values() for line in ls if line.product),
            (d.customer.id for d in documents if d.customer),
        )
        for document in documents:
            version = purchase_order_version(document, lines[document.id], products, customers)
            page.events.append(self._event(version))
            page.published[document.id] = (DocumentKind.PURCHASE_ORDER.value, document.updated_at)
        return page
