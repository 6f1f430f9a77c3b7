"""UUIDs made in bulk (`random_uuids`): random version 4 UUIDs that behave as the standard
library's (equal, hash, text, order) and that PostgreSQL stores and returns unchanged."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from stockpit_runtime.db import copy_rows, create_engine, session_factory
from stockpit_runtime.uuids import random_uuids


def test_they_are_distinct_random_version_4_uuids() -> None:
    made = random_uuids(20_000)
    assert len(made) == 20_000
    assert len(set(made)) == len(made)
    assert all(isinstance(value, uuid.UUID) for value in made)
    assert {value.version for value in made} == {4}
    assert {value.variant for value in made} == {uuid.RFC_4122}
    # Every random bit varies: the bits outside the version and variant are not fixed.
    fixed = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
    assert all(
        any((value.int >> bit) & 1 for value in made) for bit in range(128) if fixed >> bit & 1
    )
    assert random_uuids(0) == []


def test_they_behave_as_the_standard_librarys() -> None:
    for value in random_uuids(200):
        plain = uuid.UUID(str(value))
        assert value == plain
        assert plain == value
        assert hash(value) == hash(plain)
        assert str(value) == str(plain)
        assert f"{value}" == str(plain)
        assert value.int == plain.int
        assert value.bytes == plain.bytes
    first, second = random_uuids(2)
    assert (first < second) == (uuid.UUID(str(first)) < uuid.UUID(str(second)))


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, db_schema)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA "{db_schema}"'))
        await connection.execute(sa.text("CREATE TABLE ids (id uuid NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.mark.integration
async def test_postgresql_stores_them_unchanged(engine: AsyncEngine) -> None:
    made = random_uuids(1000)
    async with session_factory(engine).begin() as session:
        await copy_rows(session, "ids", ["id"], [(value,) for value in made])
    async with engine.connect() as connection:
        stored = [row.id for row in await connection.execute(sa.text("SELECT id FROM ids"))]
    assert sorted(str(value) for value in stored) == sorted(str(value) for value in made)
