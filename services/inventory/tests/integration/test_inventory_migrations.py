"""Migrations on a real PostgreSQL server: orders written before migration 0004 (JSONB
documents) read back the same after it (JSON text)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from inventory.adapters.repository import InventoryRepository
from inventory.domain import documents as domain
from inventory.entrypoints.app import MIGRATIONS, _apply_document, event_handler
from stockpit_contracts import new_event
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_runtime.consumer import IncomingMessage, Outcome, ReliableConsumer
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.migrations import upgrade_to_head
from stockpit_testing.inventory import document

pytestmark = pytest.mark.integration

TENANT = "tenant-m"


async def test_orders_kept_as_jsonb_read_back_the_same_as_json_text(
    database_url: str, db_schema: str
) -> None:
    await upgrade_to_head(MIGRATIONS, database_url, db_schema)
    engine = create_engine(database_url, db_schema)
    try:
        sessions = session_factory(engine)
        invoice = new_event(
            document(DocumentKind.INVOICE, 7, [(1, "2"), (2, "1.5")], quote_id=70), TENANT
        )
        message = IncomingMessage("documents", 0, 0, b"k", invoice.to_json(), ())
        consumer = ReliableConsumer(sessions, service="inventory", consumer_group="g")
        assert await consumer.process(message, event_handler("p.", _apply_document)) == (
            Outcome.HANDLED
        )
        async with sessions.begin() as session:
            [before] = await InventoryRepository(session, TENANT).orders()
            # The row as migration 0003 left it: a JSONB document, written by PostgreSQL.
            await session.execute(sa.text("DELETE FROM alembic_version"))
            await session.execute(sa.text("INSERT INTO alembic_version VALUES ('0003')"))
            # Tables of later migrations do not exist yet at 0003.
            await session.execute(sa.text("DROP TABLE problems, sync_runs"))
            await session.execute(
                sa.text("ALTER TABLE orders ALTER COLUMN doc TYPE jsonb USING doc::jsonb")
            )
        await upgrade_to_head(MIGRATIONS, database_url, db_schema)
        async with sessions.begin() as session:
            doc_type = await session.scalar(
                sa.text("SELECT pg_typeof(doc)::text FROM orders LIMIT 1")
            )
            [after] = await InventoryRepository(session, TENANT).orders()
            held = await InventoryRepository(session, TENANT).order_holding(
                domain.DocumentKind.INVOICE, 7
            )
        assert doc_type == "text"
        assert after == before
        assert held == before
    finally:
        await engine.dispose()
