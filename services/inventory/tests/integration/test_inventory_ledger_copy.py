"""The ledger is appended with a COPY in text format (`stock_store.append_ledger`): every value
must be stored exactly as given — texts holding what COPY escapes (tabs, newlines, carriage
returns, backslashes, a literal `\\N`), empty texts and NULLs, non-ASCII, decimals in every
form `Decimal` writes — on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from inventory.adapters import stock_store
from inventory.domain.stock import (
    Cause,
    CauseKind,
    Effect,
    Posting,
    StockKey,
    StockLevel,
    StockMovement,
    post_movements,
)
from inventory.entrypoints.app import MIGRATIONS
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.migrations import upgrade_to_head

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 30, 9, 15, 42, 123456, tzinfo=UTC)
TEXTS = [
    "invoice:1",
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "",
    "café — ü 😀",
    'quote " and comma ,',
]
QUANTITIES = [
    Decimal("1.5"),
    Decimal("-0"),
    Decimal("0E-6"),
    Decimal("1E+2"),
    Decimal("-123456.123456"),
    Decimal("99999999999999.999999"),
    Decimal("3"),
]


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    await upgrade_to_head(MIGRATIONS, database_url, db_schema)
    engine = create_engine(database_url, db_schema)
    yield engine
    await engine.dispose()  # the schema goes with the db_schema fixture


def _postings(tenant: str) -> list[Posting]:
    levels: dict[StockKey, StockLevel] = {}
    movements = []
    for index, text in enumerate(TEXTS):
        key = StockKey(uuid.uuid4(), uuid.uuid4())
        quantity = QUANTITIES[index % len(QUANTITIES)]
        cause = Cause(
            CauseKind.MANUAL_ADJUSTMENT if index % 2 else CauseKind.DOCUMENT,
            uuid.uuid4(),
            reference=text,
            version=None if index % 3 == 0 else f"v{text}",
            lines=None if index % 4 == 0 else text,
            note=None if index % 2 else text,
        )
        movements.append(StockMovement(key, Effect(quantity, -quantity, quantity), cause))
    return [
        post_movements(tenant, levels, movements[:4], AT),
        post_movements(tenant, levels, movements[4:], AT),
    ]


@pytest.mark.parametrize("tenant", ["acme-1", "odd\ttenant\\"])
async def test_the_ledger_holds_exactly_the_entries_values(
    engine: AsyncEngine, tenant: str
) -> None:
    postings = _postings(tenant)
    async with session_factory(engine).begin() as session:
        await stock_store.append_ledger(session, tenant, postings, AT)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text(
                    "SELECT tenant_id, recorded_at, product_id, location_id, delta_real,"
                    " delta_reserved, delta_incoming, cause, entry_id, cause_kind, subject_id,"
                    " reference, version, lines, note FROM stock_ledger ORDER BY id"
                )
            )
        ).all()
    expected = [
        (
            tenant,
            AT,
            str(entry.product_id),
            str(entry.location_id),
            entry.real_delta,
            entry.reserved_delta,
            entry.incoming_delta,
            f"{entry.cause_kind.value} {entry.reference}",
            entry.entry_id,
            entry.cause_kind.value,
            str(entry.subject_id),
            entry.reference,
            entry.version,
            entry.lines,
            entry.note,
        )
        for posting in postings
        for entry in posting.entries
    ]
    assert len(rows) == len(TEXTS)
    for row, wanted in zip(rows, expected, strict=True):
        assert tuple(row) == wanted
