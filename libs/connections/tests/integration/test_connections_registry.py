"""The registry on a real PostgreSQL server, in a schema of its own per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from stockpit_connections import (
    ConnectionRegistry,
    ConnectionStatus,
    TenantNotConnected,
    TokenCipher,
    migrate,
)
from stockpit_contracts.payloads.connections import ConnectionSettings

pytestmark = pytest.mark.integration

KEY = TokenCipher.generate_key()


@pytest.fixture
async def engine(database_url: str, db_schema: str) -> AsyncIterator[AsyncEngine]:
    await migrate(database_url, db_schema)
    # Like a service's engine: its search_path is some other schema.
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"search_path": "public"}}
    )
    yield engine
    await engine.dispose()


@pytest.fixture
def registry(engine: AsyncEngine, db_schema: str) -> ConnectionRegistry:
    return ConnectionRegistry(engine, KEY, schema=db_schema)


async def test_connect_disconnect_reconnect(registry: ConnectionRegistry) -> None:
    settings = ConnectionSettings(
        sync_interval_s=5, documents_since=date(2026, 1, 1), poller_rate_share=Decimal("0.5")
    )
    connected = await registry.connect("tenant-a", "token-aaaaaaaa", settings)
    assert connected.status is ConnectionStatus.CONNECTED
    assert connected.settings == settings
    assert (await registry.token_for("tenant-a")).get_secret_value() == "token-aaaaaaaa"
    assert await registry.connected_tenants() == ["tenant-a"]

    disconnected = await registry.disconnect("tenant-a")
    assert disconnected is not None
    assert disconnected.status is ConnectionStatus.DISCONNECTED
    assert disconnected.disconnected_at is not None
    with pytest.raises(TenantNotConnected):
        await registry.token_for("tenant-a")
    assert await registry.connected_tenants() == []

    reconnected = await registry.reconnect("tenant-a")
    assert reconnected is not None
    assert reconnected.is_connected
    assert reconnected.settings == settings, "settings survive a disconnect"
    assert reconnected.created_at == connected.created_at
    assert (await registry.token_for("tenant-a")).get_secret_value() == "token-aaaaaaaa"


async def test_connect_again_replaces_token_and_settings(registry: ConnectionRegistry) -> None:
    await registry.connect("tenant-a", "token-one-1111", ConnectionSettings())
    await registry.disconnect("tenant-a")
    again = await registry.connect(
        "tenant-a", "token-two-2222", ConnectionSettings(sync_interval_s=60)
    )
    assert again.is_connected
    assert again.settings.sync_interval_s == 60
    assert (await registry.token_for("tenant-a")).get_secret_value() == "token-two-2222"


async def test_unknown_tenants(registry: ConnectionRegistry) -> None:
    assert await registry.get("nobody") is None
    assert await registry.disconnect("nobody") is None
    assert await registry.reconnect("nobody") is None
    with pytest.raises(TenantNotConnected):
        await registry.token_for("nobody")


async def test_tokens_are_encrypted_at_rest_and_absent_from_reprs(
    registry: ConnectionRegistry, engine: AsyncEngine, db_schema: str
) -> None:
    connection = await registry.connect("tenant-a", "plain-token-xyz", ConnectionSettings())
    assert "plain-token-xyz" not in repr(connection)
    assert "plain-token-xyz" not in repr(await registry.token_for("tenant-a"))
    assert "plain-token-xyz" not in repr(registry)
    async with engine.connect() as db:
        stored = await db.scalar(sa.text(f'SELECT token_ciphertext FROM "{db_schema}".connections'))
    assert stored is not None
    assert b"plain-token-xyz" not in bytes(stored)
    other_key = ConnectionRegistry(engine, TokenCipher.generate_key(), schema=db_schema)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        await other_key.token_for("tenant-a")


async def test_migrations_are_idempotent(database_url: str, db_schema: str) -> None:
    await migrate(database_url, db_schema)
    await migrate(database_url, db_schema)
