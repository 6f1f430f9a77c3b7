"""The database engine of one service: its own PostgreSQL schema, asyncpg underneath."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def checked_schema(schema: str) -> str:
    """Schema names end up in DDL, so only plain identifiers are allowed."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    return schema


def create_engine(database_url: str, schema: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine whose connections resolve unqualified names in `schema` first."""
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"server_settings": {"search_path": checked_schema(schema)}},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def copy_rows(
    session: AsyncSession,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[object]],
) -> None:
    """Append rows to `table` (in the service's schema) with PostgreSQL's binary COPY, inside
    the session's transaction. For thousands of rows it costs a fraction of an INSERT of
    arrays: asyncpg checks every array element in Python, COPY encodes rows as they are.
    Values are what asyncpg takes for the column types (JSON columns take JSON text)."""
    driver = await _driver_connection(session)
    await driver.copy_records_to_table(table, records=records, columns=list(columns))


async def _driver_connection(session: AsyncSession) -> Any:
    return await driver_connection(await session.connection())


async def driver_connection(connection: AsyncConnection) -> Any:
    """The asyncpg connection under `connection`, inside its transaction: for statements whose
    rows SQLAlchemy would only slow down (COPY, thousands of rows read as they are)."""
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN with the transaction's first statement: a
        # statement sent to the driver directly before that one would commit on its own.
        await connection.execute(text("SELECT 1"))
    return driver
