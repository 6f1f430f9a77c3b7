"""A test's schema is dropped even when some session left a transaction open on its tables,
and the test then fails naming that session instead of hanging in its teardown."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from stockpit_testing.fixtures import SessionsLeftOpen, drop_schemas

pytestmark = pytest.mark.integration


def _asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


async def _schema_exists(connection: asyncpg.Connection, name: str) -> bool:
    found = await connection.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name)
    return found is not None


async def test_a_session_left_in_a_transaction_is_named_ended_and_the_schema_dropped(
    database_url: str,
) -> None:
    name = f"t_{uuid.uuid4().hex[:16]}"
    dsn = _asyncpg_dsn(database_url)
    setup = await asyncpg.connect(dsn)
    leaked = await asyncpg.connect(dsn, server_settings={"application_name": "left-open"})
    try:
        await setup.execute(f'CREATE SCHEMA "{name}"; CREATE TABLE "{name}".stock (n int)')
        transaction = leaked.transaction()
        await transaction.start()
        await leaked.fetch(f'SELECT * FROM "{name}".stock')  # holds its lock until the end
        with pytest.raises(SessionsLeftOpen, match=r"left-open.*idle in transaction"):
            await drop_schemas(database_url, name, patience_s=0.5)
        assert not await _schema_exists(setup, name)
        assert leaked.is_closed() or await _ended(leaked)
    finally:
        await setup.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await setup.close()
        leaked.terminate()


async def _ended(connection: asyncpg.Connection) -> bool:
    try:
        await connection.fetchval("SELECT 1")
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return True
    return False


async def test_schemas_nobody_holds_are_dropped_at_once(database_url: str) -> None:
    names = [f"t_{uuid.uuid4().hex[:16]}" for _ in range(2)]
    setup = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        for name in names:
            await setup.execute(f'CREATE SCHEMA "{name}"; CREATE TABLE "{name}".stock (n int)')
        await drop_schemas(database_url, *names, patience_s=0.5)
        assert [await _schema_exists(setup, name) for name in names] == [False, False]
    finally:
        await setup.close()
