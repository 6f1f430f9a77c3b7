"""The connection registry: which tenants are connected to Pennylane, with which token and settings.

The poller writes it (connect, disconnect, reconnect); the outbound service reads it. Tokens are
stored encrypted, bound to their tenant, and only ever leave as `SecretStr`, so reprs and logs show
`**********`. A tenant is pinned to the Pennylane company its first proved token belongs to: a
token of another company is refused (`CompanyMismatch`) unless the operator re-points the tenant.

A token Pennylane refused (401/403) puts the connection in `needs_new_token`: `token_for` no
longer gives it out (the poller and outbound send nothing with it) until the tenant is connected
again with a token Pennylane accepts (`connect`, or `reconnect` once the stored one is proved).

The token's rate limit is split between the poller (`poller_rate_share`) and outbound (the
rest), each pacing itself in its own process. While the tenant's first sync runs the poller
needs the budget most and outbound has least to send, so the poller takes
`poller_first_sync_rate_share` meanwhile. The registry records the first sync
(`first_sync_started` / `first_sync_finished`, cleared on disconnect) and both sides read the
same `effective_poller_share`, with hand-overs that never let the two exceed the token together:
outbound takes the smaller share as soon as it reads the flag, and the poller takes the larger
one only `FIRST_SYNC_HANDOVER` after setting it; at the end the poller takes its normal share
first, and outbound keeps the smaller one until `FIRST_SYNC_HANDOVER` after the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
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

# Longer than a paced window (5.5 s) plus what outbound takes to notice a change (it reads the
# share before each write, so a write in flight finishes at the old share).
FIRST_SYNC_HANDOVER = timedelta(seconds=15)


def effective_poller_share(
    settings: ConnectionSettings,
    first_sync_started_at: datetime | None,
    first_sync_ended_at: datetime | None,
    now: datetime,
    *,
    handover: timedelta = FIRST_SYNC_HANDOVER,
) -> Decimal:
    """The poller's share of the token as outbound must assume it (outbound paces to the rest):
    the first-sync share from the moment the first sync is recorded until `handover` after it
    ended, the normal share otherwise. Never below the normal share."""
    first_sync = max(settings.poller_rate_share, settings.poller_first_sync_rate_share)
    if first_sync_started_at is not None:
        return first_sync
    if first_sync_ended_at is not None and now < first_sync_ended_at + handover:
        return first_sync
    return settings.poller_rate_share


class ConnectionStatus(StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    # Pennylane refused the token (401/403): nothing is sent with it until a new one is given.
    NEEDS_NEW_TOKEN = "needs_new_token"  # noqa: S105 - a status, not a secret


class TenantNotConnected(LookupError):
    """No token may be used for this tenant: it is unknown or disconnected."""


@dataclass(frozen=True, slots=True)
class PennylaneCompany:
    """Who a token belongs to, as Pennylane's `GET /me` says."""

    id: int
    name: str

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"


class CompanyMismatch(ValueError):
    """The token belongs to another Pennylane company than the one the tenant is pinned to."""

    def __init__(self, tenant_id: str, pinned: PennylaneCompany, offered: PennylaneCompany) -> None:
        super().__init__(
            f"tenant {tenant_id} is connected to Pennylane company {pinned}; this token belongs "
            f"to company {offered}. A tenant never changes company by a new token: to move it, "
            "re-point it explicitly (its sync starts over)."
        )
        self.tenant_id = tenant_id
        self.pinned = pinned
        self.offered = offered


@dataclass(frozen=True, slots=True)
class Connection:
    """A tenant's connection, without its token (ask `token_for` when you must call Pennylane)."""

    tenant_id: str
    settings: ConnectionSettings
    status: ConnectionStatus
    company: PennylaneCompany | None
    connected_at: datetime
    disconnected_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Set while the tenant's first sync runs (see `effective_poller_share`).
    first_sync_started_at: datetime | None = None
    first_sync_ended_at: datetime | None = None

    @property
    def is_connected(self) -> bool:
        return self.status is ConnectionStatus.CONNECTED

    @property
    def needs_new_token(self) -> bool:
        return self.status is ConnectionStatus.NEEDS_NEW_TOKEN


def _to_connection(row: Any) -> Connection:
    return Connection(
        tenant_id=row.tenant_id,
        settings=ConnectionSettings.model_validate(row.settings),
        status=ConnectionStatus(row.status),
        company=None
        if row.pennylane_company_id is None
        else PennylaneCompany(row.pennylane_company_id, row.pennylane_company_name or ""),
        connected_at=row.connected_at,
        disconnected_at=row.disconnected_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        first_sync_started_at=row.first_sync_started_at,
        first_sync_ended_at=row.first_sync_ended_at,
    )


_PUBLIC_COLUMNS = [c for c in connections.c if c.name not in ("token_ciphertext", "token_binding")]


class ConnectionRegistry:
    """Async access to the registry in `schema` (default `connections`) of the given database."""

    def __init__(
        self,
        engine_or_sessions: AsyncEngine | async_sessionmaker[AsyncSession],
        key: TokenCipher | SecretStr | str | bytes,
        *,
        schema: str = DEFAULT_SCHEMA,
        first_sync_handover: timedelta = FIRST_SYNC_HANDOVER,
    ) -> None:
        self.first_sync_handover = first_sync_handover
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

    @property
    def key_count(self) -> int:
        """How many token keys are configured (the first encrypts)."""
        return self._cipher.key_count

    async def _run(self, statement: sa.Executable) -> sa.Result[Any]:
        async with self._sessions.begin() as session:
            return await session.execute(statement, execution_options=self._options)

    async def connect(
        self,
        tenant_id: str,
        token: SecretStr | str,
        settings: ConnectionSettings,
        *,
        company: PennylaneCompany,
        repoint: bool = False,
    ) -> Connection:
        """Connect the tenant, or replace its token and settings; it is connected afterwards.

        `company` is who the token proved to belong to. A tenant already pinned to another
        company raises `CompanyMismatch`, unless `repoint` (the operator's explicit move)."""
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value():
            raise ValueError("an empty Pennylane token")
        async with self._sessions.begin() as session:
            pinned = (
                await session.execute(
                    sa.select(
                        connections.c.pennylane_company_id, connections.c.pennylane_company_name
                    )
                    .where(connections.c.tenant_id == tenant_id)
                    .with_for_update(),
                    execution_options=self._options,
                )
            ).one_or_none()
            moves = pinned is not None and pinned.pennylane_company_id not in (None, company.id)
            if moves and not repoint:
                assert pinned is not None
                raise CompanyMismatch(
                    tenant_id,
                    PennylaneCompany(pinned.pennylane_company_id, pinned.pennylane_company_name),
                    company,
                )
            statement = self._upsert(tenant_id, secret, settings, company)
            row = (await session.execute(statement, execution_options=self._options)).one()
        return _to_connection(row)

    def _upsert(
        self,
        tenant_id: str,
        secret: SecretStr,
        settings: ConnectionSettings,
        company: PennylaneCompany,
    ) -> sa.Executable:
        now = datetime.now(UTC)
        values = {
            "token_ciphertext": self._cipher.encrypt(secret, tenant_id),
            "token_binding": 1,
            "pennylane_company_id": company.id,
            "pennylane_company_name": company.name,
            "settings": settings.model_dump(mode="json"),
            "status": ConnectionStatus.CONNECTED.value,
            "connected_at": now,
            "disconnected_at": None,
            "updated_at": now,
        }
        return (
            insert(connections)
            .values(tenant_id=tenant_id, created_at=now, **values)
            .on_conflict_do_update(index_elements=[connections.c.tenant_id], set_=values)
            .returning(*_PUBLIC_COLUMNS)
        )

    async def pin(self, tenant_id: str, company: PennylaneCompany) -> Connection:
        """Pin a tenant connected before tokens were proved; `CompanyMismatch` when it is
        pinned to another company already."""
        statement = (
            sa.update(connections)
            .where(
                connections.c.tenant_id == tenant_id,
                sa.or_(
                    connections.c.pennylane_company_id.is_(None),
                    connections.c.pennylane_company_id == company.id,
                ),
            )
            .values(pennylane_company_id=company.id, pennylane_company_name=company.name)
            .returning(*_PUBLIC_COLUMNS)
        )
        row = (await self._run(statement)).one_or_none()
        if row is not None:
            return _to_connection(row)
        known = await self.get(tenant_id)
        if known is None or known.company is None:
            raise TenantNotConnected(tenant_id)
        raise CompanyMismatch(tenant_id, known.company, company)

    async def _set_status(self, tenant_id: str, status: ConnectionStatus) -> Connection | None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"status": status.value, "updated_at": now}
        if status is ConnectionStatus.CONNECTED:
            values |= {"connected_at": now, "disconnected_at": None}
        else:
            values["disconnected_at"] = now
            # A disconnected tenant's first sync is not running: outbound gets its share back.
            running = connections.c.first_sync_started_at.is_not(None)
            values |= {
                "first_sync_started_at": None,
                "first_sync_ended_at": sa.case(
                    (running, sa.func.now()), else_=connections.c.first_sync_ended_at
                ),
            }
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

    async def mark_token_rejected(
        self, tenant_id: str, connected_at: datetime, *, session: AsyncSession | None = None
    ) -> bool:
        """Pennylane refused the token the tenant was connected with at `connected_at`: it
        needs a new one. False (nothing changed) when the tenant was connected again since (a
        new token may have arrived while the refused one was in use) or is not connected.
        With `session`, in the caller's transaction."""
        statement = (
            sa.update(connections)
            .where(
                connections.c.tenant_id == tenant_id,
                connections.c.status == ConnectionStatus.CONNECTED.value,
                connections.c.connected_at == connected_at,
            )
            .values(status=ConnectionStatus.NEEDS_NEW_TOKEN.value, updated_at=datetime.now(UTC))
            .returning(connections.c.tenant_id)
        )
        if session is None:
            result = await self._run(statement)
        else:
            result = await session.execute(statement, execution_options=self._options)
        return result.first() is not None

    async def first_sync_started(self, tenant_id: str) -> bool:
        """The tenant's first sync runs (kept from its first start when it resumes); False
        when the tenant is not connected. The database's clock, which outbound reads too."""
        statement = (
            sa.update(connections)
            .where(
                connections.c.tenant_id == tenant_id,
                connections.c.status == ConnectionStatus.CONNECTED.value,
            )
            .values(
                first_sync_started_at=sa.func.coalesce(
                    connections.c.first_sync_started_at, sa.func.now()
                )
            )
            .returning(connections.c.tenant_id)
        )
        return (await self._run(statement)).first() is not None

    async def first_sync_finished(self, tenant_id: str) -> None:
        """Every stream's first scan is done (call it once the poller paces at its normal
        share again)."""
        await self._run(
            sa.update(connections)
            .where(
                connections.c.tenant_id == tenant_id,
                connections.c.first_sync_started_at.is_not(None),
            )
            .values(first_sync_started_at=None, first_sync_ended_at=sa.func.now())
        )

    async def poller_share(self, tenant_id: str) -> Decimal | None:
        """The tenant's `effective_poller_share` now (on the database's clock); None if the
        tenant is unknown."""
        statement = sa.select(
            connections.c.settings,
            connections.c.first_sync_started_at,
            connections.c.first_sync_ended_at,
            sa.func.now().label("now"),
        ).where(connections.c.tenant_id == tenant_id)
        row = (await self._run(statement)).one_or_none()
        if row is None:
            return None
        return effective_poller_share(
            ConnectionSettings.model_validate(row.settings),
            row.first_sync_started_at,
            row.first_sync_ended_at,
            row.now,
            handover=self.first_sync_handover,
        )

    async def get(self, tenant_id: str) -> Connection | None:
        statement = sa.select(*_PUBLIC_COLUMNS).where(connections.c.tenant_id == tenant_id)
        row = (await self._run(statement)).one_or_none()
        return None if row is None else _to_connection(row)

    async def token_for(self, tenant_id: str, *, connected_only: bool = True) -> SecretStr:
        """The decrypted token of a connected tenant (of any known one with `connected_only`
        off); raises TenantNotConnected otherwise."""
        statement = sa.select(connections.c.token_ciphertext, connections.c.token_binding).where(
            connections.c.tenant_id == tenant_id
        )
        if connected_only:
            statement = statement.where(connections.c.status == ConnectionStatus.CONNECTED.value)
        row = (await self._run(statement)).one_or_none()
        if row is None:
            raise TenantNotConnected(tenant_id)
        return self._cipher.decrypt(row.token_ciphertext, tenant_id, legacy=row.token_binding == 0)

    async def rotate_keys(self) -> int:
        """Re-encrypt every stored token with the newest key, bound to its tenant, in one
        transaction; afterwards only the newest key is needed. Returns how many were rewritten.
        A token that decrypts with none of the keys stops the whole rotation (nothing changes)."""
        async with self._sessions.begin() as session:
            rows = (
                await session.execute(
                    sa.select(
                        connections.c.tenant_id,
                        connections.c.token_ciphertext,
                        connections.c.token_binding,
                    )
                    .order_by(connections.c.tenant_id)
                    .with_for_update(),
                    execution_options=self._options,
                )
            ).all()
            for row in rows:
                ciphertext = self._cipher.reencrypt(
                    row.token_ciphertext, row.tenant_id, legacy=row.token_binding == 0
                )
                await session.execute(
                    sa.update(connections)
                    .where(connections.c.tenant_id == row.tenant_id)
                    .values(token_ciphertext=ciphertext, token_binding=1),
                    execution_options=self._options,
                )
        return len(rows)

    async def connected_tenants(self) -> list[str]:
        statement = (
            sa.select(connections.c.tenant_id)
            .where(connections.c.status == ConnectionStatus.CONNECTED.value)
            .order_by(connections.c.tenant_id)
        )
        return list((await self._run(statement)).scalars())
