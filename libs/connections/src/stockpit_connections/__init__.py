"""The connection registry shared by the poller (writes) and the outbound service (reads).

registry = ConnectionRegistry(engine, TokenCipher.from_env())
await migrate(database_url)                     # once, at start-up (the poller does it)
await registry.connect("tenant-a", token, ConnectionSettings(), company=proved_company)
token = await registry.token_for("tenant-a")    # SecretStr, only while connected
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from stockpit_runtime.db import checked_schema
from stockpit_runtime.migrations import upgrade_to_head

from stockpit_connections.crypto import TOKEN_KEY_ENV, TokenCipher, TokenKeyError
from stockpit_connections.registry import (
    FIRST_SYNC_HANDOVER,
    CompanyMismatch,
    Connection,
    ConnectionRegistry,
    ConnectionStatus,
    PennylaneCompany,
    TenantNotConnected,
    effective_poller_share,
)
from stockpit_connections.tables import DEFAULT_SCHEMA

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def migrate(database_url: str, schema: str = DEFAULT_SCHEMA) -> None:
    """Create or upgrade the registry's schema (safe to run from several replicas at once)."""
    await upgrade_to_head(MIGRATIONS, database_url, schema)


def _revisions_before_head() -> frozenset[str]:
    """This code's migrations older than its newest: a registry at one of them lacks columns
    this code reads."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    return frozenset(r.revision for r in script.walk_revisions() if r.revision != head)


async def _registry_revision(engine: AsyncEngine, schema: str) -> str | None:
    """The registry's migration revision; None while its version table does not exist."""
    async with engine.connect() as connection:
        if not await connection.scalar(
            sa.text("SELECT to_regclass(format('%I.alembic_version', CAST(:s AS text)))"),
            {"s": schema},
        ):
            return None
        revision = await connection.scalar(
            sa.text(f'SELECT version_num FROM "{checked_schema(schema)}".alembic_version')
        )
        return None if revision is None else str(revision)


async def migrate_or_wait(
    database_url: str, schema: str = DEFAULT_SCHEMA, *, timeout_s: float = 120
) -> None:
    """For a reader of the registry (outbound): migrate it when this role may create tables in
    its schema (one role for everything, in development), else wait until its owner (the
    poller's role) has brought it to this code's newest migration, since a reader's role may
    only read it. In a rolling upgrade the new reader may start before the new poller: it waits
    for the columns it reads instead of failing on them. A registry at a migration this code
    does not know is newer (a poller upgraded first) and read as it is: migrations only add."""
    engine = create_async_engine(database_url)
    older = _revisions_before_head()
    revision: str | None = None
    try:
        async with engine.connect() as connection:
            may_create = await connection.scalar(
                sa.text(
                    "SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :s) "
                    "OR has_schema_privilege(:s, 'CREATE')"
                ),
                {"s": schema},
            )
        if may_create:
            await migrate(database_url, schema)
            return
        async with asyncio.timeout(timeout_s):
            while True:
                revision = await _registry_revision(engine, schema)
                if revision is not None and revision not in older:
                    return
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise RuntimeError(
            f"the connection registry ({schema}) is at migration {revision or 'none'}, older "
            f"than this code's within {timeout_s:.0f} s: its owner, the poller, migrates it at "
            "start"
        ) from None
    finally:
        await engine.dispose()


__all__ = [
    "DEFAULT_SCHEMA",
    "FIRST_SYNC_HANDOVER",
    "MIGRATIONS",
    "TOKEN_KEY_ENV",
    "CompanyMismatch",
    "Connection",
    "ConnectionRegistry",
    "ConnectionStatus",
    "PennylaneCompany",
    "TenantNotConnected",
    "TokenCipher",
    "TokenKeyError",
    "effective_poller_share",
    "migrate",
    "migrate_or_wait",
]
