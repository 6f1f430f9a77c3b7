"""The unit of work of one tenant inside one database transaction (the convention of
`stockpit_runtime.unit_of_work`: an async context manager; `commit()` writes and commits).

Handlers load and save aggregates through `uow.repo` and post stock through `uow.post(outcome)`;
`uow.flush()` (run by `commit()`) then writes the staged orders, moves the levels and appends
the ledger for every posted outcome at once, and stages every resulting message in the
transactional outbox, so stock, aggregates and messages commit together or not at all. Writing
once at the end is what lets a consumer batch of hundreds of documents cost a handful of
statements.

Each message keeps the event that caused it (`caused_by`, set per event by batch handlers) and
the order in which its facts happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stockpit_contracts import EnvelopeMeta, new_event
from stockpit_contracts.payloads.inventory import ProblemReported
from stockpit_contracts.topics import INVENTORY_STOCK
from stockpit_runtime import unit_of_work
from stockpit_runtime.outbox import OutboxRow, outbox_rows, stage_rows

from inventory.adapters import report_store, stock_store
from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import Product
from inventory.domain.duplicates import redirect
from inventory.domain.events import DomainEvent, ProductCreated
from inventory.domain.outcome import Outcome
from inventory.domain.stock import LedgerEntry, StockMovement
from inventory.domain.values import TenantId
from inventory.service_layer.messages import Message, to_message
from inventory.service_layer.problems import problem_row
from inventory.service_layer.stock_events import StockEventRows


class UnitOfWork(unit_of_work.UnitOfWork):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | AsyncSession,
        tenant_id: TenantId,
        *,
        topic_prefix: str,
        caused_by: EnvelopeMeta | None = None,
        now: datetime | None = None,
    ) -> None:
        super().__init__(sessions)
        self.tenant_id = tenant_id
        self.repo = InventoryRepository(self.session, tenant_id)
        self.topic_prefix = topic_prefix
        self.caused_by = caused_by
        self.now = now or datetime.now(UTC)
        # Facts in the order they happened, each with the event that caused it; an int stands
        # for the stock events of the staged posting with that index (known after `flush`).
        self._facts: list[tuple[DomainEvent | Message | int, EnvelopeMeta | None]] = []
        self._postings: list[Sequence[StockMovement]] = []
        self._pennylane_ids: dict[UUID, int] = {}

    def _message(self, fact: DomainEvent | Message) -> Message | None:
        if isinstance(fact, tuple):
            return fact
        return to_message(fact, self._pennylane_ids)

    def know_products(self, products: list[Product]) -> None:
        """Products already loaded: their Pennylane ids go on stock events without a query."""
        for product in products:
            if product.pennylane_id is not None:
                self._pennylane_ids[product.product_id] = product.pennylane_id

    def collect(self, events: list[DomainEvent]) -> None:
        self._facts.extend((event, self.caused_by) for event in events)

    def emit(self, message: Message) -> None:
        self._facts.append((message, self.caused_by))

    async def post(self, outcome: Outcome) -> None:
        """Collect the outcome's events and stage its movements for levels and ledger."""
        self.collect(outcome.events)
        if outcome.movements:
            self._facts.append((len(self._postings), self.caused_by))
            self._postings.append(outcome.movements)

    async def _write(self) -> None:
        await self.flush()

    async def flush(self) -> None:
        """Write staged orders and stock, then stage every message in the outbox.

        Products created from Pennylane are first checked for likely duplicates, and stock
        posted on a merged product goes to the product it was merged into (rule 15)."""
        # Imported here: the duplicates module builds on this one.
        from inventory.service_layer.duplicates import flag_created_products

        await flag_created_products(
            self, [fact for fact, _ in self._facts if isinstance(fact, ProductCreated)]
        )
        await self.repo.flush()
        if self._postings:
            merged = await self.repo.merged_products()
            if merged:
                self._postings = [redirect(group, merged) for group in self._postings]
        postings = await stock_store.move_levels(
            self.session, self.tenant_id, self._postings, self.now
        )
        # A ledger entry stands for its own stock event (`LedgerEntry.stock_changed`).
        facts: list[tuple[LedgerEntry | DomainEvent | Message, EnvelopeMeta | None]] = []
        for fact, cause in self._facts:
            if isinstance(fact, int):
                facts.extend((event, cause) for event in postings[fact].facts)
            else:
                facts.append((fact, cause))
        self._facts.clear()
        self._postings.clear()
        unknown = {
            entry.movement.key.product_id
            for posting in postings
            for entry in posting.entries
            if entry.movement.key.product_id not in self._pennylane_ids
        }
        if unknown:
            self._pennylane_ids.update(await self.repo.pennylane_ids_of_products(unknown))
        stock_rows = StockEventRows(
            self.tenant_id,
            INVENTORY_STOCK.name(self.topic_prefix),
            sum(len(posting.entries) for posting in postings),
        )
        await stock_store.append_ledger(
            self.session, self.tenant_id, postings, self.now, stock_rows.id_text
        )
        rows: list[OutboxRow] = []
        # Problems are kept for the tenant's report as they are emitted.
        problems: list[dict[str, object]] = []
        for item, cause in facts:
            # Checked first: a ledger entry is a tuple, as a Message is.
            if isinstance(item, LedgerEntry):
                row = stock_rows.row(
                    item, self._pennylane_ids.get(item.movement.key.product_id), cause
                )
                if row is not None:
                    rows.append(row)
                    continue
                event: DomainEvent | Message = item.stock_changed()
            else:
                event = item
            message = self._message(event)
            if message is None:
                continue
            rows.extend(self._outbox_rows([(message, cause)]))
            if isinstance(message[2], ProblemReported):
                problems.append(problem_row(self.tenant_id, event, message[2], self.now))
        await stage_rows(self.session, rows)
        await report_store.add_problems(self.session, problems)

    def _outbox_rows(
        self, messages: Sequence[tuple[Message, EnvelopeMeta | None]]
    ) -> list[OutboxRow]:
        return outbox_rows(
            (
                topic.name(self.topic_prefix),
                key,
                new_event(payload, self.tenant_id, caused_by=cause),
            )
            for (topic, key, payload), cause in messages
        )
