"""A consumer batch applied at once (`documents_batch_handler`: reads up front, one write of
each kind at the end) must leave exactly what the same events leave applied one at a time
(`event_handler`): the same levels, ledger, orders and outbox messages in the same order, each
message caused by the same event. Checked on real PostgreSQL with seeded random histories that
put related documents (one quote's invoice and purchase order, versions, deletions, credit
notes, drafts, unknown products, services) inside one batch."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from inventory.entrypoints.app import (
    MIGRATIONS,
    _apply_document,
    documents_batch_handler,
    event_handler,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_contracts import Envelope, Payload, new_event
from stockpit_contracts.payloads.documents import DocumentDeleted, DocumentKind
from stockpit_runtime.consumer import IncomingMessage, Outcome, ReliableConsumer
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.migrations import upgrade_to_head
from stockpit_testing.fixtures import drop_schemas
from stockpit_testing.inventory import T0, document

pytestmark = pytest.mark.integration

PREFIX = "batch."
TENANTS = ("north", "south")
INVOICE, PURCHASE_ORDER, CREDIT_NOTE = (
    DocumentKind.INVOICE,
    DocumentKind.PURCHASE_ORDER,
    DocumentKind.CREDIT_NOTE,
)


def _history(rng: random.Random) -> list[Envelope[Payload]]:
    """Events of two tenants interleaved; each document's versions in time order, sometimes a
    stale or repeated version, quotes shared by invoices and purchase orders."""
    events: list[Envelope[Payload]] = []
    minute = 0
    for _ in range(70):
        minute += 1
        tenant = rng.choice(TENANTS)
        roll = rng.random()
        if roll < 0.1 and events:
            # A stale version (an older event again, under a new event id).
            old = rng.choice(events)
            events.append(new_event(old.payload, old.tenant_id))
            continue
        if roll < 0.2:
            events.append(
                new_event(
                    DocumentDeleted(
                        kind=rng.choice((INVOICE, PURCHASE_ORDER)),
                        pennylane_id=rng.randint(1, 8),
                        deleted_at=T0 + timedelta(minutes=minute),
                    ),
                    tenant,
                )
            )
            continue
        lines = [
            (rng.choice((1, 2, 3, 4, 5, 6, 90, None)), str(rng.randint(1, 9)))
            for _ in range(rng.randint(1, 4))
        ]
        if roll < 0.3:
            payload = document(
                CREDIT_NOTE,
                rng.randint(100, 104),
                [(product, f"-{quantity}") for product, quantity in lines],
                credited=rng.randint(1, 8),
                minute=minute,
                service_products=[90],
            )
        else:
            payload = document(
                rng.choice((INVOICE, PURCHASE_ORDER)),
                rng.randint(1, 8),
                lines,
                minute=minute,
                draft=rng.random() < 0.15,
                quote_id=rng.choice((None, 500, 501)),
                customer=rng.choice((None, 7, 8)),
                service_products=[90],
            )
        events.append(new_event(payload, tenant))
    return events


@pytest.fixture
async def engines(database_url: str, db_schema: str) -> AsyncIterator[tuple[AsyncEngine, ...]]:
    """Two schemas: one for the batch, one for the same events one at a time."""
    schemas = (f"{db_schema}_batch", f"{db_schema}_single")
    engines = []
    for schema in schemas:
        await upgrade_to_head(MIGRATIONS, database_url, schema)
        engines.append(create_engine(database_url, schema))
    yield tuple(engines)
    for engine in engines:
        await engine.dispose()
    await drop_schemas(database_url, *schemas)


def _messages(events: list[Envelope[Payload]]) -> list[IncomingMessage]:
    return [
        IncomingMessage("documents", 0, offset, b"k", event.to_json(), ())
        for offset, event in enumerate(events)
    ]


async def _state(engine: AsyncEngine) -> dict[str, Any]:
    """Everything the intake wrote, with generated ids replaced by stable names."""
    async with engine.connect() as connection:
        names: dict[str, str] = {}
        for tenant, product_id, pennylane_id in await connection.execute(
            sa.text("SELECT tenant_id, product_id, pennylane_id FROM products")
        ):
            names[str(product_id)] = f"{tenant}/product {pennylane_id}"
        for tenant, location_id in await connection.execute(
            sa.text("SELECT tenant_id, location_id FROM locations")
        ):
            names[str(location_id)] = f"{tenant}/location"
        levels = sorted(
            (
                row.tenant_id,
                names[row.product_id],
                names[row.location_id],
                row.real,
                row.reserved,
                row.incoming,
            )
            for row in await connection.execute(sa.text("SELECT * FROM stock_levels"))
        )
        ledger = [
            (
                row.tenant_id,
                names[row.product_id],
                row.delta_real,
                row.delta_reserved,
                row.cause_kind,
                row.reference,
                row.version,
                row.lines,
            )
            for row in await connection.execute(sa.text("SELECT * FROM stock_ledger ORDER BY id"))
        ]
        orders = sorted(
            (
                row.tenant_id,
                -1 if row.quote_id is None else row.quote_id,
                row.status,
                sorted(reference for reference, _ in json.loads(row.doc)["sources"]),
            )
            for row in await connection.execute(
                sa.text("SELECT tenant_id, quote_id, status, doc FROM orders")
            )
        )
        held = sorted(
            (row.tenant_id, row.reference)
            for row in await connection.execute(sa.text("SELECT * FROM order_documents"))
        )
        outbox = []
        for row in await connection.execute(sa.text("SELECT * FROM outbox ORDER BY id")):
            body = json.loads(row.value)
            payload = body["payload"]
            for field in ("ledger_entry_id", "reason", "order_id", "return_id"):
                payload.pop(field, None)
            for field in ("product_id", "location_id", "subject_id"):
                if field in payload:
                    payload[field] = names.get(payload[field], "generated")
            outbox.append(
                (body["tenant_id"], row.topic, body["event_type"], body["causation_id"], payload)
            )
    # Tenants are independent (a batch applies them one after the other): compare each
    # tenant's rows in order. Within one posting, entries follow the order of the (random)
    # product ids: compare each event's entries and messages as a set.
    ledger.sort(key=lambda entry: entry[0])
    outbox.sort(key=lambda message: message[0])
    return {
        "levels": levels,
        "ledger": _runs(ledger, key=lambda entry: (entry[0], entry[5], entry[6])),
        "orders": orders,
        "held": held,
        "outbox": _runs(outbox, key=lambda message: message[3]),
    }


def _runs(rows: list[Any], key: Callable[[Any], object]) -> list[list[str]]:
    """Consecutive rows with the same key, each run sorted."""
    return [sorted(repr(row) for row in run) for _, run in itertools.groupby(rows, key=key)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_a_batch_leaves_what_the_same_events_leave_one_at_a_time(
    engines: tuple[AsyncEngine, AsyncEngine], seed: int
) -> None:
    batch_engine, single_engine = engines
    events = _history(random.Random(seed))
    batched = ReliableConsumer(session_factory(batch_engine), service="i", consumer_group="g")
    single = ReliableConsumer(session_factory(single_engine), service="i", consumer_group="g")
    one_by_one = event_handler(PREFIX, _apply_document)
    at_once = documents_batch_handler(PREFIX)
    rng = random.Random(seed)
    position = 0
    while position < len(events):
        size = rng.randint(1, 25)
        chunk = _messages(events[position : position + size])
        outcomes = await batched.process_batch(chunk, one_by_one, at_once)
        assert Outcome.DEAD_LETTERED not in outcomes
        for message in chunk:
            assert await single.process(message, one_by_one) == Outcome.HANDLED
        position += size
    batch_state, single_state = await _state(batch_engine), await _state(single_engine)
    assert batch_state["ledger"], "the history moved some stock"
    assert any(order[1] is not None for order in batch_state["orders"]), "quotes were used"
    for part in ("levels", "ledger", "orders", "held", "outbox"):
        for index, (got, expected) in enumerate(
            zip(batch_state[part], single_state[part], strict=False)
        ):
            assert got == expected, f"{part}[{index}]"
        assert len(batch_state[part]) == len(single_state[part]), part


def test_histories_put_related_documents_in_one_batch() -> None:
    """The generator does what the equivalence test needs (else it would prove little)."""
    events = _history(random.Random(1))
    kinds = {type(event.payload).__name__ for event in events}
    assert kinds == {"DocumentVersionRead", "DocumentDeleted"}
    credit_notes = [e for e in events if getattr(e.payload, "kind", None) == CREDIT_NOTE]
    assert credit_notes
    quotes = [(e.tenant_id, getattr(e.payload, "quote_id", None)) for e in events]
    assert any(quotes.count(q) > 1 for q in quotes if q[1] is not None), "a quote used twice"
