"""Alembic, run programmatically: one schema per service, its version table inside it.

A service's `migrations/env.py` is two lines: it calls `run_env(target_metadata)`. Services call
`upgrade_to_head(...)` at start-up so a fresh database is ready without a separate step.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from stockpit_runtime.db import checked_schema


def alembic_config(script_location: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = checked_schema(schema)
    return config


def run_env(target_metadata: MetaData | None) -> None:
    """Body of a service's env.py: online migrations only (we always have a database)."""
    config = context.config
    schema: str = config.attributes["schema"]
    connection: Connection | None = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through stockpit_runtime.migrations.upgrade_to_head")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table_schema=schema,
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def upgrade_to_head(
    script_location: Path, database_url: str, schema: str, *, revision: str = "head"
) -> None:
    """Create the service's schema if needed and apply every migration to it (or those up to
    `revision`)."""
    config = alembic_config(script_location, database_url, schema)
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": checked_schema(schema)}}
    )
    try:
        async with engine.begin() as connection:
            # Two replicas starting together must not both run migrations.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema}
            )
            # Only when missing: even with IF NOT EXISTS, PostgreSQL asks for the right to
            # create schemas in the database, which a service's own role does not have (its
            # schema was made for it, owned by it).
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            )
            if not exists:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            await connection.run_sync(_upgrade, config, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def upgrade_sync(script_location: Path, database_url: str, schema: str) -> None:
    asyncio.run(upgrade_to_head(script_location, database_url, schema))


__all__: list[Any] = ["alembic_config", "run_env", "upgrade_sync", "upgrade_to_head"]
