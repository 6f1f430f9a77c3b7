"""COPY on a real PostgreSQL server: rows appended in order, inside the session's
transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_runtime.db import copy_rows, create_engine, session_factory

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, db_schema)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA "{db_schema}"'))
        await connection.execute(
            sa.text("CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY, note text)")
        )
    yield engine
    await engine.dispose()


async def _notes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT note FROM notes ORDER BY id"))
        return [row.note for row in rows]


async def test_rows_are_copied_in_order_inside_the_transaction(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    first = [(f"a{n}",) for n in range(5000)]
    second = [(f"b{n}",) for n in range(3)]
    async with sessions.begin() as session:
        await copy_rows(session, "notes", ["note"], first)
        await copy_rows(session, "notes", ["note"], second)
        await copy_rows(session, "notes", ["note"], [])
    assert await _notes(engine) == [row[0] for row in first + second]


async def _copy_then_fail(engine: AsyncEngine) -> None:
    async with session_factory(engine).begin() as session:
        await copy_rows(session, "notes", ["note"], [("lost",)] * 1000)
        raise RuntimeError("failed after the copy")


async def test_copied_rows_roll_back_with_the_transaction(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError, match="failed after the copy"):
        await _copy_then_fail(engine)
    assert await _notes(engine) == []
    async with session_factory(engine).begin() as session:
        await copy_rows(session, "notes", ["note"], [("kept",)])
    assert await _notes(engine) == ["kept"]


async def test_a_failing_copy_fails_the_transaction(engine: AsyncEngine) -> None:
    with pytest.raises(Exception, match="missing"):
        async with session_factory(engine).begin() as session:
            await copy_rows(session, "notes", ["missing"], [("x",)])
    assert await _notes(engine) == []
