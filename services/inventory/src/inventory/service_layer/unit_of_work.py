"""The unit of work of one tenant inside one database transaction.

Handlers load and save aggregates through `uow.repo`, post stock through `uow.post(outcome)`,
and `uow.publish()` stages every resulting message in the transactional outbox, so stock,
aggregates and messages commit together or not at all.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import EnvelopeMeta, new_event
from stockpit_runtime.outbox import outbox_row

from inventory.adapters import stock_store
from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import Product
from inventory.domain.events import DomainEvent, StockChanged
from inventory.domain.outcome import Outcome
from inventory.domain.stock import Posting
from inventory.domain.values import TenantId
from inventory.service_layer.messages import Message, to_message

INSERT_OUTBOX = sa.text(
    """
    INSERT INTO outbox (topic, key, value, headers)
    SELECT topic, key, value, CAST(headers AS jsonb)
    FROM unnest(
        CAST(:topics AS text[]), CAST(:keys AS bytea[]), CAST(:payloads AS bytea[]),
        CAST(:headers AS text[])
    ) WITH ORDINALITY AS message(topic, key, value, headers, position)
    ORDER BY position
    """
)


class UnitOfWork:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: TenantId,
        *,
        topic_prefix: str,
        caused_by: EnvelopeMeta | None = None,
        now: datetime | None = None,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.repo = InventoryRepository(session, tenant_id)
        self.topic_prefix = topic_prefix
        self.caused_by = caused_by
        self.now = now or datetime.now(UTC)
        self.events: list[DomainEvent] = []
        self.messages: list[Message] = []
        self._pennylane_ids: dict[UUID, int] = {}

    def know_products(self, products: list[Product]) -> None:
        """Products already loaded: their Pennylane ids go on stock events without a query."""
        for product in products:
            if product.pennylane_id is not None:
                self._pennylane_ids[product.product_id] = product.pennylane_id

    def collect(self, events: list[DomainEvent]) -> None:
        self.events.extend(events)

    def emit(self, message: Message) -> None:
        self.messages.append(message)

    async def post(self, outcome: Outcome) -> Posting:
        """Collect the outcome's events and post its movements to levels and ledger."""
        self.events.extend(outcome.events)
        posting = await stock_store.post(self.session, self.tenant_id, outcome.movements, self.now)
        self.events.extend(posting.events)
        return posting

    async def publish(self) -> None:
        """Stage the collected events in the outbox (same transaction)."""
        unknown = {
            event.product_id
            for event in self.events
            if isinstance(event, StockChanged) and event.product_id not in self._pennylane_ids
        }
        if unknown:
            self._pennylane_ids.update(await self.repo.pennylane_ids_of_products(unknown))
        messages = [
            message
            for event in self.events
            if (message := to_message(event, self._pennylane_ids)) is not None
        ]
        messages.extend(self.messages)
        self.events.clear()
        self.messages.clear()
        if not messages:
            return
        rows = [
            outbox_row(
                topic.name(self.topic_prefix),
                key,
                new_event(payload, self.tenant_id, caused_by=self.caused_by),
            )
            for topic, key, payload in messages
        ]
        # The outbox's own row format, all rows in one statement, ids in event order.
        await self.session.execute(
            INSERT_OUTBOX,
            {
                "topics": [row["topic"] for row in rows],
                "keys": [row["key"] for row in rows],
                "payloads": [row["value"] for row in rows],
                "headers": [json.dumps(row["headers"]) for row in rows],
            },
        )
