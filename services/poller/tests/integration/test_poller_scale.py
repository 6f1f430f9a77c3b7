"""What lets one replica serve thousands of tenants: claims in priority order that read only the
rows they claim, and one HTTP pool shared by every tenant's client (without mixing tokens).
Real PostgreSQL, the Pennylane sandbox over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import httpx
import pytest
import sqlalchemy as sa
from pennylane_sandbox import SandboxConfig
from pennylane_sandbox import create_app as sandbox_app
from pennylane_sandbox.serving import serve_in_loop
from poller.adapters import state
from poller.adapters.clients import TenantClients
from poller.adapters.gate import SyncGate
from poller.adapters.orm import sync_runs, tenants
from poller.domain.schedule import EVERY_STREAM
from poller.entrypoints.app import MIGRATIONS
from poller.service_layer.run_report import RunEnd
from poller.service_layer.scheduler import Scheduler, SchedulerConfig
from poller.service_layer.sync import Lease, SyncStopped
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stockpit_connections import ConnectionRegistry
from stockpit_pennylane.client import PennylaneClient
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.migrations import upgrade_to_head

pytestmark = pytest.mark.integration

TOKEN_A = "scale-tenant-a-token"
TOKEN_B = "scale-tenant-b-token"
API = "/api/external/v2"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def sessions(
    database_url: str, db_schema: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await upgrade_to_head(MIGRATIONS, database_url, db_schema)
    engine = create_engine(database_url, db_schema, pool_size=2)
    yield session_factory(engine)
    await engine.dispose()


async def _add_tenant(
    session: AsyncSession,
    tenant_id: str,
    *,
    late: dt.timedelta,
    synced: bool = True,
    active: bool = True,
    lease_owner: str | None = None,
) -> None:
    await session.execute(
        sa.insert(tenants).values(
            tenant_id=tenant_id,
            active=active,
            next_due_at=NOW - late,
            requested_at=None if synced else NOW - late,
            last_started_at=NOW - dt.timedelta(hours=1) if synced else None,
            lease_owner=lease_owner,
            lease_expires_at=NOW + dt.timedelta(minutes=1) if lease_owner else None,
        )
    )


async def _claim(sessions: async_sessionmaker[AsyncSession], owner: str, limit: int) -> list[str]:
    async with sessions.begin() as session:
        claimed = await state.claim_due(
            session, owner, NOW, NOW + dt.timedelta(seconds=30), limit=limit
        )
    return [c.tenant_id for c in claimed]


async def test_claims_take_first_syncs_then_the_most_overdue(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        for minutes in (1, 7, 3, 5):
            await _add_tenant(session, f"late-{minutes}m", late=dt.timedelta(minutes=minutes))
        await _add_tenant(session, "new", late=dt.timedelta(0), synced=False)
        await _add_tenant(session, "not-due", late=-dt.timedelta(minutes=1))
        await _add_tenant(session, "disconnected", late=dt.timedelta(hours=1), active=False)
        await _add_tenant(session, "held", late=dt.timedelta(hours=1), lease_owner="other")

    assert await _claim(sessions, "replica-1", 3) == ["new", "late-7m", "late-5m"]
    assert await _claim(sessions, "replica-1", 10) == ["late-3m", "late-1m"], (
        "claimed tenants are held; not due, disconnected and held by another are left"
    )
    async with sessions() as session:
        runs = (await session.execute(sa.select(sync_runs.c.tenant_id))).scalars().all()
        row = (
            await session.execute(
                sa.select(tenants.c.lease_owner, tenants.c.lease_version).where(
                    tenants.c.tenant_id == "new"
                )
            )
        ).one()
    assert sorted(runs) == sorted(["new", "late-7m", "late-5m", "late-3m", "late-1m"])
    assert row.lease_owner == "replica-1"
    assert row.lease_version == 1


async def test_replicas_claiming_together_take_different_tenants(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        for i in range(6):
            await _add_tenant(session, f"t{i}", late=dt.timedelta(minutes=i))
    async with sessions.begin() as first:
        mine = await state.claim_due(
            first, "replica-1", NOW, NOW + dt.timedelta(seconds=30), limit=3
        )
        # The second replica claims while the first one's claim is not committed yet.
        theirs = await _claim(sessions, "replica-2", 3)
    assert [c.tenant_id for c in mine] == ["t5", "t4", "t3"]
    assert theirs == ["t2", "t1", "t0"]


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_in_loop(sandbox_app(SandboxConfig(tokens=[TOKEN_A, TOKEN_B]))) as url:
        yield url


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, noting the token each request left with."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.tokens: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request.headers["authorization"].removeprefix("Bearer "))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _sandbox_log(sandbox_url: str, token: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        response = await admin.get(f"/_sandbox/{token}/requests")
        response.raise_for_status()
        entries: list[dict[str, object]] = response.json()["requests"]
        return entries


async def test_tenants_share_one_pool_and_each_request_carries_its_own_token(
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as admin:
        for token, count in ((TOKEN_A, 3), (TOKEN_B, 5)):
            response = await admin.post(
                f"/_sandbox/{token}/seed/customer_invoices",
                json={"count": 0, "customers": 1, "products": count},
            )
            response.raise_for_status()
    transport = RecordingTransport()
    pool = TenantClients(sandbox_url + API, max_connections=2, transport=transport)
    try:
        client_a = await pool.for_sync("a", SecretStr(TOKEN_A), Decimal("0.6"), SyncGate())
        client_b = await pool.for_sync("b", SecretStr(TOKEN_B), Decimal("0.6"), SyncGate())

        async def products(client: PennylaneClient) -> list[int]:
            return sorted([p.id async for p in client.iter_products(page_size=2)])

        # Interleaved on two pooled connections: connections pass from one tenant to the other.
        answers = await asyncio.gather(*(products(c) for c in (client_a, client_b) * 3))
        me_a, me_b = await asyncio.gather(client_a.get_me(), client_b.get_me())
    finally:
        await pool.aclose()

    a_products, b_products = answers[0], answers[1]
    assert len(a_products) == 3
    assert len(b_products) == 5
    assert not set(a_products) & set(b_products)
    assert answers == [a_products, b_products] * 3, "each tenant always saw its own company"
    assert me_a.company.id != me_b.company.id
    sent_a = client_a.metrics.requests
    sent_b = client_b.metrics.requests
    assert transport.tokens.count(TOKEN_A) == sent_a
    assert transport.tokens.count(TOKEN_B) == sent_b
    assert len(transport.tokens) == sent_a + sent_b, "one pool carried every tenant's requests"
    # And the sandbox saw each company's requests under that company's token only.
    assert len(await _sandbox_log(sandbox_url, TOKEN_A)) == sent_a
    assert len(await _sandbox_log(sandbox_url, TOKEN_B)) == sent_b


async def test_a_closed_gate_stops_only_its_tenant_on_the_shared_pool(sandbox_url: str) -> None:
    pool = TenantClients(sandbox_url + API)
    try:
        gate_a = SyncGate()
        client_a = await pool.for_sync("a", SecretStr(TOKEN_A), Decimal("0.6"), gate_a)
        client_b = await pool.for_sync("b", SecretStr(TOKEN_B), Decimal("0.6"), SyncGate())
        await client_a.get_me()
        gate_a.close(SyncStopped, "a")
        with pytest.raises(SyncStopped):
            await client_a.get_me()
        await client_b.get_me()
        # The next sync brings an open gate: the same client reads again.
        client_a_again = await pool.for_sync("a", SecretStr(TOKEN_A), Decimal("0.6"), SyncGate())
        assert client_a_again is client_a
        await client_a.get_me()
    finally:
        await pool.aclose()
    assert len(await _sandbox_log(sandbox_url, TOKEN_A)) == 2


async def test_a_run_ends_with_the_interval_in_force_when_it_ends(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The release computes the next due time with the interval the sync was claimed under,
    in the statement that records the run's end; an interval changed in Stockpit during the
    sync is read under the row lock and counts instead."""
    async with sessions.begin() as session:
        for tenant_id in ("kept", "changed"):
            await _add_tenant(session, tenant_id, late=dt.timedelta(minutes=1))
        await session.execute(sa.update(tenants).values(sync_interval_s=600))
    async with sessions.begin() as session:
        claimed = await state.claim_due(
            session, "replica-1", NOW, NOW + dt.timedelta(minutes=1), limit=2
        )
    assert {(c.tenant_id, c.sync_interval_s) for c in claimed} == {
        ("kept", 600),
        ("changed", 600),
    }
    async with sessions.begin() as session:
        await state.set_sync_interval(session, "changed", 1200, NOW)  # during the sync

    started = dt.datetime.now(dt.UTC)
    config = SchedulerConfig("replica-1", "http://127.0.0.1:9", "scale")
    scheduler = Scheduler(sessions, cast(ConnectionRegistry, None), config)
    try:
        for c in claimed:
            await scheduler._release(
                Lease(c.tenant_id, "replica-1", c.version),
                started,
                "succeeded",
                None,
                full=True,
                interval_s=c.sync_interval_s,
                ended=RunEnd(EVERY_STREAM, 0),
            )
    finally:
        await scheduler.stop()

    async with sessions() as session:
        rows = {
            row.tenant_id: row
            for row in await session.execute(
                sa.select(
                    tenants.c.tenant_id,
                    tenants.c.lease_owner,
                    tenants.c.next_due_at,
                    tenants.c.last_success_at,
                )
            )
        }
        runs = {
            row.tenant_id: row
            for row in await session.execute(
                sa.select(sync_runs.c.tenant_id, sync_runs.c.outcome, sync_runs.c.finished_at)
            )
        }
    assert rows["kept"].next_due_at == started + dt.timedelta(seconds=600)
    assert rows["changed"].next_due_at == started + dt.timedelta(seconds=1200)
    for tenant_id in ("kept", "changed"):
        assert rows[tenant_id].lease_owner is None
        assert rows[tenant_id].last_success_at is not None
        assert runs[tenant_id].outcome == "succeeded"
        assert runs[tenant_id].finished_at is not None


async def test_a_run_that_lost_its_lease_is_ended_and_old_runs_are_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """`finish_run` (a run whose lease another replica took): its end recorded, the tenant's
    runs past their keeping time deleted, the lease left to its new holder."""
    async with sessions.begin() as session:
        await _add_tenant(session, "taken", late=dt.timedelta(minutes=1))
        await session.execute(
            sa.insert(sync_runs).values(
                tenant_id="taken",
                replica_id="replica-0",
                lease_version=0,
                streams=[],
                started_at=sa.func.now() - dt.timedelta(days=state.SYNC_RUNS_KEPT_DAYS + 1),
            )
        )
    async with sessions.begin() as session:
        [claim] = await state.claim_due(
            session, "replica-1", NOW, NOW + dt.timedelta(minutes=1), limit=1
        )
    async with sessions.begin() as session:
        await session.execute(
            sa.update(tenants).values(lease_owner="replica-2", lease_version=claim.version + 1)
        )
    async with sessions.begin() as session:
        await state.finish_run(session, "taken", "replica-1", claim.version, "lease_lost")
    async with sessions() as session:
        runs = (
            await session.execute(
                sa.select(sync_runs.c.replica_id, sync_runs.c.outcome, sync_runs.c.finished_at)
            )
        ).all()
        owner = await session.scalar(sa.select(tenants.c.lease_owner))
    assert [(r.replica_id, r.outcome) for r in runs] == [("replica-1", "lease_lost")]
    assert runs[0].finished_at is not None
    assert owner == "replica-2"
