"""COPY on a real PostgreSQL server: rows appended while other work goes on, in order, inside
the session's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_runtime.db import copy_rows, copying_rows, create_engine, session_factory

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


async def test_rows_are_copied_while_the_body_runs_and_written_when_it_ends(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    first = [(f"a{n}",) for n in range(5000)]
    async with sessions.begin() as session:
        async with copying_rows(session, "notes", ["note"], first):
            # The body yields to the loop, as awaiting anything but the session may.
            await asyncio.sleep(0.01)
            second = [(f"b{n}",) for n in range(3)]
        await copy_rows(session, "notes", ["note"], second)
        async with copying_rows(session, "notes", ["note"], []):
            pass
    assert await _notes(engine) == [row[0] for row in first + second]


async def _copy_then_fail(engine: AsyncEngine) -> None:
    async with (
        session_factory(engine).begin() as session,
        copying_rows(session, "notes", ["note"], [("lost",)] * 1000),
    ):
        raise RuntimeError("body failed")


async def test_a_failing_body_waits_for_the_copy_and_the_transaction_rolls_back(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(RuntimeError, match="body failed"):
        await _copy_then_fail(engine)
    # The connection was free again for the rollback, and nothing was kept.
    assert await _notes(engine) == []
    async with session_factory(engine).begin() as session:
        await copy_rows(session, "notes", ["note"], [("kept",)])
    assert await _notes(engine) == ["kept"]


async def _copy_into_a_missing_column(engine: AsyncEngine) -> None:
    async with (
        session_factory(engine).begin() as session,
        copying_rows(session, "notes", ["missing"], [("x",)]),
    ):
        pass


async def test_a_failing_copy_fails_the_block(engine: AsyncEngine) -> None:
    with pytest.raises(Exception, match="missing"):
        await _copy_into_a_missing_column(engine)
    assert await _notes(engine) == []
