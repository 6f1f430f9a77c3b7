"""Least privilege in PostgreSQL, as the system runs (`running_system`, like `make demo`): each
service connects with a role of its own that owns its schema only; the poller owns the
connection registry and outbound may only read it; inventory cannot even see it; only the
services that decrypt tokens are given the token key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_ops.probes import Inventory, SandboxAdmin, connect, stock_matches, wait_until
from stockpit_ops.system import SystemConfig, running_system

pytestmark = pytest.mark.e2e

TOKEN = "roles-company-token"


async def _scalar(url: str, sql: str) -> object:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            return await connection.scalar(sa.text(sql))
    finally:
        await engine.dispose()


async def _refused(url: str, sql: str) -> str:
    with pytest.raises(sa.exc.DBAPIError) as refused:
        await _scalar(url, sql)
    return str(refused.value)


async def test_each_service_uses_its_own_role_owning_only_its_schema(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
    )
    roles = config.roles
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        sandbox.seed_invoices(TOKEN, count=4, seed=5, products=2, max_lines=2)
        connect(system, "acme", TOKEN)
        wait_until(
            "the system works under its own roles",
            lambda: stock_matches(Inventory(system, "acme"), sandbox.expected_stock(TOKEN)),
        )

        for service in ("poller", "inventory", "outbound"):
            env = system.services[service].env
            assert make_url(env["DATABASE_URL"]).username == roles.roles[service]
            assert ("STOCKPIT_TOKEN_KEY" in env) == (service != "inventory")

        registry = f'"{config.schema("connections")}".connections'
        owners = {
            schema: await _scalar(
                database_url,
                f"SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '{schema}'",
            )
            for schema in config.schemas
        }
        assert owners == {
            config.schema("poller"): roles.roles["poller"],
            config.schema("inventory"): roles.roles["inventory"],
            config.schema("outbound"): roles.roles["outbound"],
            config.schema("connections"): roles.roles["poller"],
        }

        outbound_url = config.database_url_of("outbound")
        assert await _scalar(outbound_url, f"SELECT count(*) FROM {registry}") == 1
        denied = await _refused(outbound_url, f"UPDATE {registry} SET status = 'disconnected'")
        assert "permission denied" in denied
        denied = await _refused(outbound_url, f"DELETE FROM {registry}")
        assert "permission denied" in denied
        denied = await _refused(
            outbound_url, f'CREATE TABLE "{config.schema("connections")}".x (id int)'
        )
        assert "permission denied" in denied

        inventory_url = config.database_url_of("inventory")
        denied = await _refused(inventory_url, f"SELECT count(*) FROM {registry}")
        assert "permission denied" in denied
        denied = await _refused(
            inventory_url, f'SELECT count(*) FROM "{config.schema("poller")}".tenants'
        )
        assert "permission denied" in denied
        denied = await _refused(inventory_url, 'CREATE SCHEMA "stockpit_not_allowed"')
        assert "permission denied" in denied
