"""The unit of work on a real PostgreSQL server: it commits only when told, rolls back otherwise,
joins a transaction it was given without ending it, and `run_in_transaction` runs a unit of
work again when PostgreSQL chose it as a deadlock's victim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.unit_of_work import UnitOfWork, run_in_transaction

pytestmark = pytest.mark.integration


class NotesUnitOfWork(UnitOfWork):
    """A unit of work that buffers its notes and writes them on commit."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession] | AsyncSession,
    ) -> None:
        super().__init__(sessions)
        self.pending: list[str] = []

    async def _write(self) -> None:
        for note in self.pending:
            await self.session.execute(
                sa.text("INSERT INTO notes (note) VALUES (:note)"), {"note": note}
            )
        self.pending.clear()


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, db_schema)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA "{db_schema}"'))
        await connection.execute(
            sa.text("CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY, note text)")
        )
        await connection.execute(sa.text("CREATE TABLE counters (name text PRIMARY KEY, n int)"))
        await connection.execute(sa.text("INSERT INTO counters VALUES ('a', 0), ('b', 0)"))
    yield engine
    await engine.dispose()


async def _notes(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(sa.text("SELECT note FROM notes ORDER BY id"))
        return [row.note for row in rows]


async def test_commit_writes_the_buffered_writes_and_commits_once(engine: AsyncEngine) -> None:
    commits: list[object] = []
    sa.event.listen(engine.sync_engine, "commit", commits.append)
    async with NotesUnitOfWork(session_factory(engine)) as uow:
        uow.pending.append("kept")
        await uow.commit()
    assert await _notes(engine) == ["kept"]
    assert len(commits) == 1


async def test_leaving_without_commit_or_by_an_error_rolls_back(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with NotesUnitOfWork(sessions) as uow:
        await uow.session.execute(sa.text("INSERT INTO notes (note) VALUES ('read only')"))
    with pytest.raises(RuntimeError):
        await _fail_after_writing(NotesUnitOfWork(sessions))
    assert await _notes(engine) == []


async def test_a_joined_unit_of_work_leaves_the_transaction_to_its_owner(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    async with sessions.begin() as session:
        async with NotesUnitOfWork(session) as uow:
            assert not uow.owns_transaction
            uow.pending.append("with the owner")
            await uow.commit()
        # Still the owner's open transaction: it can go on and it decides.
        await session.execute(sa.text("INSERT INTO notes (note) VALUES ('owner')"))
    assert await _notes(engine) == ["with the owner", "owner"]

    with pytest.raises(RuntimeError):
        await _owner_fails_after_the_handler(sessions)
    assert await _notes(engine) == ["with the owner", "owner"]
    with pytest.raises(TypeError):
        async with sessions.begin() as session:
            await run_in_transaction(lambda: NotesUnitOfWork(session), _noop)


async def _noop(uow: NotesUnitOfWork) -> None:
    return None


async def _fail_after_writing(uow: NotesUnitOfWork) -> None:
    async with uow:
        uow.pending.append("lost")
        await uow._write()
        raise RuntimeError("handler failed")


async def _owner_fails_after_the_handler(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        async with NotesUnitOfWork(session) as uow:
            uow.pending.append("rolled back by the owner")
            await uow.commit()
        raise RuntimeError("the owner failed after the handler")


async def test_a_deadlock_victim_runs_again_and_both_transactions_take_effect(
    engine: AsyncEngine,
) -> None:
    sessions = session_factory(engine)
    first_locks = asyncio.Barrier(2)
    runs: list[str] = []

    def work(first: str, second: str) -> Callable[[NotesUnitOfWork], Awaitable[None]]:
        async def locking(uow: NotesUnitOfWork) -> None:
            runs.append(first)
            update = sa.text("UPDATE counters SET n = n + 1 WHERE name = :name")
            await uow.session.execute(update, {"name": first})
            if runs.count(first) == 1:
                # Both hold their first row before either asks for its second: a deadlock.
                await first_locks.wait()
            await uow.session.execute(update, {"name": second})
            uow.pending.append(f"{first}{second}")

        return locking

    await asyncio.gather(
        run_in_transaction(lambda: NotesUnitOfWork(sessions), work("a", "b")),
        run_in_transaction(lambda: NotesUnitOfWork(sessions), work("b", "a")),
    )
    assert len(runs) == 3, "PostgreSQL broke the deadlock by failing one, which ran again"
    assert sorted(await _notes(engine)) == ["ab", "ba"]
    async with engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT name, n FROM counters"))).all()
    counts = {row.name: row.n for row in rows}
    assert counts == {"a": 2, "b": 2}
