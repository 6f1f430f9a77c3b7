"""The connection registry: which tenants are connected to Pennylane, with which token and settings.

The poller writes it (connect, disconnect, reconnect); the outbound service reads it. Tokens are
stored encrypted and only ever leave as `SecretStr`, so reprs and logs show `**********`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_runtime.db import checked_schema

from stockpit_connections.crypto import TokenCipher
from stockpit_connections.tables import DEFAULT_SCHEMA, SCHEMA_PLACEHOLDER, connections


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


class TenantNotConnected(LookupError):
    """No token may be used for this tenant: it is unknown or disconnected."""


@dataclass(frozen=True, slots=True)
class Connection:
    """A tenant's connection, without its token (ask `token_for` when you must call Pennylane)."""

    tenant_id: str
    settings: ConnectionSettings
    status: ConnectionStatus
    connected_at: datetime
    disconnected_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_connected(self) -> bool:
        return self.status is ConnectionStatus.CONNECTED


def _to_connection(row: Any) -> Connection:
    return Connection(
        tenant_id=row.tenant_id,
        settings=ConnectionSettings.model_validate(row.settings),
        status=ConnectionStatus(row.status),
        connected_at=row.connected_at,
        disconnected_at=row.disconnected_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


_PUBLIC_COLUMNS = [c for c in connections.c if c.name != "token_ciphertext"]


class ConnectionRegistry:
    """Async access to the registry in `schema` (default `connections`) of the given database."""

    def __init__(
        self,
        engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession],
        key: TokenCipher | SecretStr | str | bytes,
        *,
        schema: str = DEFAULT_SCHEMA,
    ) -> None:
        self._sessions = (
            async_sessionmaker(engine_or_sessions, expire_on_commit=False)
            if isinstance(engine_or_sessions, AsyncEngine)
            else engine_or_sessions
        )
        self._cipher = key if isinstance(key, TokenCipher) else TokenCipher(key)
        self._options = {"schema_translate_map": {SCHEMA_PLACEHOLDER: checked_schema(schema)}}
        self.schema = schema

    def __repr__(self) -> str:
        return f"ConnectionRegistry(schema={self.schema!r})"

    async def _run(self, statement: sa.Executable) -> sa.Result[Any]:
        async with self._sessions.begin() as session:
            return await session.execute(statement, execution_options=self._options)

    async def connect(
        self, tenant_id: str, token: SecretStr | str, settings: ConnectionSettings
    ) -> Connection:
        """Connect the tenant, or replace its token and settings; it is connected afterwards."""
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value():
            raise ValueError("an empty Pennylane token")
        now = datetime.now(UTC)
        values = {
            "token_ciphertext": self._cipher.encrypt(secret),
            "settings": settings.model_dump(mode="json"),
            "status": ConnectionStatus.CONNECTED.value,
            "connected_at": now,
            "disconnected_at": None,
            "updated_at": now,
        }
        statement = (
            insert(connections)
            .values(tenant_id=tenant_id, created_at=now, **values)
            .on_conflict_do_update(index_elements=[connections.c.tenant_id], set_=values)
            .returning(*_PUBLIC_COLUMNS)
        )
        return _to_connection((await self._run(statement)).one())

    async def _set_status(self, tenant_id: str, status: ConnectionStatus) -> Connection | None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if status is ConnectionStatus.CONNECTED:
            values |= {"connected_at": now, "disconnected_at": None}
        else:
            values["disconnected_at"] = now
        statement = (
            sa.update(connections)
            .where(connections.c.tenant_id == tenant_id)
            .values(**values)
            .returning(*_PUBLIC_COLUMNS)
        )
        row = (await self._run(statement)).one_or_none()
        return None if row is None else _to_connection(row)

    async def disconnect(self, tenant_id: str) -> Connection | None:
        """Stop using the tenant's token; token, settings and data stay. None if unknown."""
        return await self._set_status(tenant_id, ConnectionStatus.DISCONNECTED)

    async def reconnect(self, tenant_id: str) -> Connection | None:
        """Use the stored token and settings again. None if the tenant never connected."""
        return await self._set_status(tenant_id, ConnectionStatus.CONNECTED)

    async def get(self, tenant_id: str) -> Connection | None:
        statement = sa.select(*_PUBLIC_COLUMNS).where(connections.c.tenant_id == tenant_id)
        row = (await self._run(statement)).one_or_none()
        return None if row is None else _to_connection(row)

    async def token_for(self, tenant_id: str) -> SecretStr:
        """The decrypted token of a connected tenant; raises TenantNotConnected otherwise."""
        statement = sa.select(connections.c.token_ciphertext).where(
            connections.c.tenant_id == tenant_id,
            connections.c.status == ConnectionStatus.CONNECTED.value,
        )
        ciphertext = (await self._run(statement)).scalar_one_or_none()
        if ciphertext is None:
            raise TenantNotConnected(tenant_id)
        return self._cipher.decrypt(ciphertext)

    async def connected_tenants(self) -> list[str]:
        statement = (
            sa.select(connections.c.tenant_id)
            .where(connections.c.status == ConnectionStatus.CONNECTED.value)
            .order_by(connections.c.tenant_id)
        )
        return list((await self._run(statement)).scalars())
