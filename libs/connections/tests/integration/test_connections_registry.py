"""The registry on a real PostgreSQL server, in a schema of its own per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from stockpit_connections import (
    MIGRATIONS,
    CompanyMismatch,
    ConnectionRegistry,
    ConnectionStatus,
    PennylaneCompany,
    TenantNotConnected,
    TokenCipher,
    effective_poller_share,
    migrate,
    migrate_or_wait,
)
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_runtime.migrations import upgrade_to_head

pytestmark = pytest.mark.integration

KEY = TokenCipher.generate_key()
ACME = PennylaneCompany(1000, "Acme")
GLOBEX = PennylaneCompany(1001, "Globex")


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
    connected = await registry.connect("tenant-a", "token-aaaaaaaa", settings, company=ACME)
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
    await registry.connect("tenant-a", "token-one-1111", ConnectionSettings(), company=ACME)
    await registry.disconnect("tenant-a")
    again = await registry.connect(
        "tenant-a", "token-two-2222", ConnectionSettings(sync_interval_s=60), company=ACME
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
    connection = await registry.connect(
        "tenant-a", "plain-token-xyz", ConnectionSettings(), company=ACME
    )
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


async def test_a_tenant_is_pinned_to_its_company(registry: ConnectionRegistry) -> None:
    connected = await registry.connect("alice", "alice-token-1", ConnectionSettings(), company=ACME)
    assert connected.company == ACME
    renewed = await registry.connect("alice", "alice-token-2", ConnectionSettings(), company=ACME)
    assert renewed.company == ACME, "a new token of the same company is fine"
    with pytest.raises(CompanyMismatch, match="connected to Pennylane company 1000 \\(Acme\\)"):
        await registry.connect("alice", "globex-token", ConnectionSettings(), company=GLOBEX)
    assert (await registry.token_for("alice")).get_secret_value() == "alice-token-2"
    with pytest.raises(CompanyMismatch):
        await registry.pin("alice", GLOBEX)

    moved = await registry.connect(
        "alice", "globex-token", ConnectionSettings(), company=GLOBEX, repoint=True
    )
    assert moved.company == GLOBEX
    assert (await registry.token_for("alice")).get_secret_value() == "globex-token"


async def test_a_ciphertext_copied_to_another_tenants_row_does_not_decrypt(
    registry: ConnectionRegistry, engine: AsyncEngine, db_schema: str
) -> None:
    await registry.connect("alice", "alice-token-1", ConnectionSettings(), company=ACME)
    await registry.connect("bob", "bob-token-22", ConnectionSettings(), company=GLOBEX)
    async with engine.begin() as db:
        await db.execute(
            sa.text(
                f'UPDATE "{db_schema}".connections SET token_ciphertext = '
                f'(SELECT token_ciphertext FROM "{db_schema}".connections '
                "WHERE tenant_id = 'alice') WHERE tenant_id = 'bob'"
            )
        )
    with pytest.raises(ValueError, match="written for another tenant"):
        await registry.token_for("bob")
    assert (await registry.token_for("alice")).get_secret_value() == "alice-token-1"


async def test_rotation_re_encrypts_every_token_with_the_newest_key(
    engine: AsyncEngine, db_schema: str
) -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    before = ConnectionRegistry(engine, old, schema=db_schema)
    tokens = {f"tenant-{n}": f"token-{n}-secret" for n in range(5)}
    for tenant, token in tokens.items():
        await before.connect(tenant, token, ConnectionSettings(), company=ACME)
    await before.disconnect("tenant-3")
    # One row as written before tokens were bound to their tenant.
    async with engine.begin() as db:
        await db.execute(
            sa.text(
                f'UPDATE "{db_schema}".connections SET token_ciphertext = :c, token_binding = 0 '
                "WHERE tenant_id = 'tenant-4'"
            ),
            {"c": Fernet(old.encode()).encrypt(b"token-4-secret")},
        )

    rotated = await ConnectionRegistry(engine, f"{new},{old}", schema=db_schema).rotate_keys()
    assert rotated == 5

    only_new = ConnectionRegistry(engine, new, schema=db_schema)
    for tenant, token in tokens.items():
        got = await only_new.token_for(tenant, connected_only=False)
        assert got.get_secret_value() == token, tenant
    with pytest.raises(ValueError, match="cannot be decrypted"):
        await ConnectionRegistry(engine, old, schema=db_schema).token_for("tenant-0")
    async with engine.connect() as db:
        bindings = set(
            (await db.execute(sa.text(f'SELECT token_binding FROM "{db_schema}".connections')))
            .scalars()
            .all()
        )
    assert bindings == {1}


async def test_rotation_without_the_old_key_changes_nothing(
    engine: AsyncEngine, db_schema: str
) -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    await ConnectionRegistry(engine, old, schema=db_schema).connect(
        "alice", "alice-token-1", ConnectionSettings(), company=ACME
    )
    with pytest.raises(ValueError, match="cannot be decrypted"):
        await ConnectionRegistry(engine, new, schema=db_schema).rotate_keys()
    still = ConnectionRegistry(engine, old, schema=db_schema)
    assert (await still.token_for("alice")).get_secret_value() == "alice-token-1"


async def test_a_refused_token_gives_out_nothing_until_a_new_one(
    registry: ConnectionRegistry,
) -> None:
    first = await registry.connect("tenant-a", "token-old-1111", ConnectionSettings(), company=ACME)
    assert await registry.mark_token_rejected("tenant-a", first.connected_at)
    waiting = await registry.get("tenant-a")
    assert waiting is not None
    assert waiting.status is ConnectionStatus.NEEDS_NEW_TOKEN
    assert waiting.needs_new_token
    assert not waiting.is_connected
    with pytest.raises(TenantNotConnected):
        await registry.token_for("tenant-a")
    assert await registry.connected_tenants() == []
    assert not await registry.mark_token_rejected("tenant-a", first.connected_at), "once"

    renewed = await registry.connect(
        "tenant-a", "token-new-2222", ConnectionSettings(), company=ACME
    )
    assert renewed.is_connected
    assert (await registry.token_for("tenant-a")).get_secret_value() == "token-new-2222"
    # A refusal of the token used before the new one arrived changes nothing.
    assert not await registry.mark_token_rejected("tenant-a", first.connected_at)
    assert (await registry.get("tenant-a")).is_connected  # type: ignore[union-attr]


async def test_the_effective_poller_share_follows_the_first_sync(
    engine: AsyncEngine, db_schema: str
) -> None:
    """Outbound paces to what the poller may take: the first-sync share from the moment the
    first sync is recorded until a hand-over after it ended or the tenant was disconnected."""
    registry = ConnectionRegistry(engine, KEY, schema=db_schema, first_sync_handover=timedelta(0))
    slow = ConnectionRegistry(engine, KEY, schema=db_schema)  # the 15 s hand-over
    settings = ConnectionSettings(
        poller_rate_share=Decimal("0.6"), poller_first_sync_rate_share=Decimal("0.9")
    )
    assert await registry.poller_share("tenant-a") is None
    assert not await registry.first_sync_started("tenant-a"), "unknown tenant"
    await registry.connect("tenant-a", "token-aaaaaaaa", settings, company=ACME)
    assert await registry.poller_share("tenant-a") == Decimal("0.6")

    assert await registry.first_sync_started("tenant-a")
    started = await registry.get("tenant-a")
    assert started is not None
    assert started.first_sync_started_at is not None
    assert await registry.poller_share("tenant-a") == Decimal("0.9")
    # A first sync that resumes (another run, another replica) keeps its first start.
    assert await registry.first_sync_started("tenant-a")
    again = await registry.get("tenant-a")
    assert again is not None
    assert again.first_sync_started_at == started.first_sync_started_at

    await registry.first_sync_finished("tenant-a")
    assert await slow.poller_share("tenant-a") == Decimal("0.9"), "within the hand-over"
    assert await registry.poller_share("tenant-a") == Decimal("0.6")

    assert await registry.first_sync_started("tenant-a")
    await registry.disconnect("tenant-a")
    gone = await registry.get("tenant-a")
    assert gone is not None
    assert gone.first_sync_started_at is None
    assert gone.first_sync_ended_at is not None
    assert await slow.poller_share("tenant-a") == Decimal("0.9"), "within the hand-over"
    assert await registry.poller_share("tenant-a") == Decimal("0.6")
    assert not await registry.first_sync_started("tenant-a"), "not while disconnected"


def test_the_first_sync_share_is_never_below_the_normal_one() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    settings = ConnectionSettings(
        poller_rate_share=Decimal("0.95"), poller_first_sync_rate_share=Decimal("0.9")
    )
    assert effective_poller_share(settings, now, None, now) == Decimal("0.95")
    default = ConnectionSettings()
    assert effective_poller_share(default, None, None, now) == Decimal("0.6")
    assert effective_poller_share(default, now, None, now) == Decimal("0.9")
    ended = now - timedelta(seconds=10)
    assert effective_poller_share(default, None, ended, now) == Decimal("0.9")
    assert effective_poller_share(default, None, ended - timedelta(seconds=6), now) == Decimal(
        "0.6"
    )


async def test_a_poller_share_over_the_cap_is_refused_and_a_stored_one_lowered(
    database_url: str, db_schema: str
) -> None:
    """Outbound always keeps one of the token's 25 requests, so the poller may have 24."""
    with pytest.raises(ValidationError, match="poller_rate_share"):
        ConnectionSettings(poller_rate_share=Decimal("1"))
    await upgrade_to_head(MIGRATIONS, database_url, db_schema, revision="0004")
    engine = create_async_engine(database_url)
    try:
        registry = ConnectionRegistry(engine, KEY, schema=db_schema)
        await registry.connect("tenant-a", "token-aaaaaaaa", ConnectionSettings(), company=ACME)
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    f'UPDATE "{db_schema}".connections SET settings = settings '
                    """|| '{"poller_rate_share": "1", "poller_first_sync_rate_share": "0.97"}'"""
                )
            )
        await migrate(database_url, db_schema)
        stored = await registry.get("tenant-a")
        assert stored is not None
        assert stored.settings.poller_rate_share == Decimal("0.96")
        assert stored.settings.poller_first_sync_rate_share == Decimal("0.96")
    finally:
        await engine.dispose()


@pytest.fixture
async def reader_url(database_url: str, db_schema: str) -> AsyncIterator[str]:
    """A role that may only read the registry, like outbound's in production."""
    role, password = f"reader_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    admin = create_async_engine(database_url)
    async with admin.begin() as connection:
        await connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{db_schema}"'))
        await connection.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
        await connection.execute(sa.text(f'GRANT USAGE ON SCHEMA "{db_schema}" TO {role}'))
        await connection.execute(
            sa.text(
                f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{db_schema}" GRANT SELECT ON TABLES TO {role}'
            )
        )
    url = make_url(database_url).set(username=role, password=password)
    yield url.render_as_string(hide_password=False)
    async with admin.begin() as connection:
        await connection.execute(sa.text(f"DROP OWNED BY {role} CASCADE"))
        await connection.execute(sa.text(f"DROP ROLE {role}"))
    await admin.dispose()


async def test_a_reader_waits_until_the_owner_brought_the_registry_to_its_migrations(
    database_url: str, db_schema: str, reader_url: str
) -> None:
    """A rolling upgrade where the new outbound starts before the new poller: it waits for the
    registry's newest migration (the columns it reads), not only for the table."""
    with pytest.raises(RuntimeError, match="at migration none"):
        await migrate_or_wait(reader_url, db_schema, timeout_s=1)
    await upgrade_to_head(MIGRATIONS, database_url, db_schema, revision="0003")
    with pytest.raises(RuntimeError, match="at migration 0003"):
        await migrate_or_wait(reader_url, db_schema, timeout_s=1)

    waiting = asyncio.create_task(migrate_or_wait(reader_url, db_schema, timeout_s=60))
    await asyncio.sleep(1)
    assert not waiting.done(), "still waiting for the owner"
    await migrate(database_url, db_schema)
    await asyncio.wait_for(waiting, 30)

    reader = create_async_engine(reader_url)
    try:
        registry = ConnectionRegistry(reader, KEY, schema=db_schema)
        assert await registry.connected_tenants() == []
    finally:
        await reader.dispose()
