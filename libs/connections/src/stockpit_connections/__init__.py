"""The connection registry shared by the poller (writes) and the outbound service (reads).

registry = ConnectionRegistry(engine, TokenCipher.from_env())
await migrate(database_url)                     # once, at start-up (the poller does it)
await registry.connect("tenant-a", token, ConnectionSettings(), company=proved_company)
token = await registry.token_for("tenant-a")    # SecretStr, only while connected
"""

from __future__ import annotations

from pathlib import Path

from stockpit_runtime.migrations import upgrade_to_head

from stockpit_connections.crypto import TOKEN_KEY_ENV, TokenCipher, TokenKeyError
from stockpit_connections.registry import (
    CompanyMismatch,
    Connection,
    ConnectionRegistry,
    ConnectionStatus,
    PennylaneCompany,
    TenantNotConnected,
)
from stockpit_connections.tables import DEFAULT_SCHEMA

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def migrate(database_url: str, schema: str = DEFAULT_SCHEMA) -> None:
    """Create or upgrade the registry's schema (safe to run from several replicas at once)."""
    await upgrade_to_head(MIGRATIONS, database_url, schema)


__all__ = [
    "DEFAULT_SCHEMA",
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
    "migrate",
]
