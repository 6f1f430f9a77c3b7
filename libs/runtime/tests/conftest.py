"""Fixtures of the runtime's integration tests (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_runtime.db import create_engine
from stockpit_runtime.migrations import upgrade_to_head

MIGRATIONS = Path(__file__).parent / "migrations"


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    """A fresh schema with the messaging tables, and an `effects` table handlers write to."""
    await upgrade_to_head(MIGRATIONS, database_url, db_schema)
    engine = create_engine(database_url, db_schema)
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE effects (note text)"))
    yield engine
    await engine.dispose()
