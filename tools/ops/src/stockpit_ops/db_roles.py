"""Least privilege in PostgreSQL: one login role per service, owning its own schema only.

Run once per deployment with the administrator's URL (`stockpit db-roles`, the compose
`db-roles` step, `running_system`): it creates (or updates) the roles and their schemas, and the
services then connect with their own role's URL and nothing more:

| role | owns | may also |
|---|---|---|
| poller | its schema and the connection registry's (`connections`) | — |
| inventory | its schema | — |
| outbound | its schema | read the registry (USAGE on the schema, SELECT on its tables) |

No role may create schemas, roles or databases; the services create their tables in the schema
made for them (each migration runs as the schema's owner). Running it again is harmless: the
passwords are set again, and tables an earlier deployment created as the administrator are given
to the schema's role.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

SERVICES = ("poller", "inventory", "outbound")


@dataclass(frozen=True)
class RolePlan:
    """Schemas and login roles of one deployment (names checked by PostgreSQL's quoting)."""

    passwords: Mapping[str, str]  # service -> its role's password
    schemas: Mapping[str, str] = field(
        default_factory=lambda: {s: s for s in (*SERVICES, "connections")}
    )
    roles: Mapping[str, str] = field(default_factory=lambda: {s: f"stockpit_{s}" for s in SERVICES})

    def database_url(self, admin_url: str, service: str) -> str:
        """The administrator's URL with the service's role and password instead."""
        url = make_url(admin_url).set(
            username=self.roles[service], password=self.passwords[service]
        )
        return url.render_as_string(hide_password=False)


async def _run(connection: AsyncConnection, template: str, *args: str) -> None:
    """Run a DDL statement whose identifiers (%I) and literals (%L) PostgreSQL quotes itself."""
    params = {f"a{n}": arg for n, arg in enumerate(args)}
    placeholders = ", ".join(f"CAST(:a{n} AS text)" for n in range(len(args)))
    statement = await connection.scalar(
        sa.text(f"SELECT format(CAST(:template AS text), {placeholders})"),
        {"template": template, **params},
    )
    await connection.execute(sa.text(str(statement)))


async def _exists(connection: AsyncConnection, sql: str, name: str) -> bool:
    return bool(await connection.scalar(sa.text(sql), {"n": name}))


async def _own_schema(connection: AsyncConnection, schema: str, role: str) -> None:
    if await _exists(connection, "SELECT 1 FROM pg_namespace WHERE nspname = :n", schema):
        await _run(connection, "ALTER SCHEMA %I OWNER TO %I", schema, role)
    else:
        await _run(connection, "CREATE SCHEMA %I AUTHORIZATION %I", schema, role)
    relations = await connection.execute(
        sa.text(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm')"
        ),
        {"s": schema},
    )
    for name, kind in relations.all():
        what = {"v": "VIEW", "m": "MATERIALIZED VIEW"}.get(kind, "TABLE")
        await _run(connection, f"ALTER {what} %I.%I OWNER TO %I", schema, name, role)


async def bootstrap_roles(admin_url: str, plan: RolePlan) -> None:
    """Create or update the roles and their schemas (as the administrator), in one
    transaction."""
    engine = create_async_engine(admin_url)
    try:
        async with engine.begin() as connection:
            # Two deployments bootstrapping at once must not interleave.
            await connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('roles'))"))
            database = str(await connection.scalar(sa.text("SELECT current_database()")))
            for service in SERVICES:
                role, password = plan.roles[service], plan.passwords[service]
                verb = (
                    "ALTER"
                    if await _exists(connection, "SELECT 1 FROM pg_roles WHERE rolname = :n", role)
                    else "CREATE"
                )
                await _run(
                    connection,
                    f"{verb} ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOREPLICATION PASSWORD %L",
                    role,
                    password,
                )
                await _run(connection, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
                await _own_schema(connection, plan.schemas[service], role)
            poller, outbound = plan.roles["poller"], plan.roles["outbound"]
            registry = plan.schemas["connections"]
            await _own_schema(connection, registry, poller)
            await _run(connection, "GRANT USAGE ON SCHEMA %I TO %I", registry, outbound)
            await _run(
                connection, "GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I", registry, outbound
            )
            await _run(
                connection,
                "ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I",
                poller,
                registry,
                outbound,
            )
    finally:
        await engine.dispose()


async def drop_roles(admin_url: str, plan: RolePlan) -> None:
    """Drop the roles (a test run's), with whatever they still own or were granted."""
    engine = create_async_engine(admin_url)
    try:
        async with engine.begin() as connection:
            for service in SERVICES:
                role = plan.roles[service]
                if await _exists(connection, "SELECT 1 FROM pg_roles WHERE rolname = :n", role):
                    await _run(connection, "DROP OWNED BY %I CASCADE", role)
                    await _run(connection, "DROP ROLE %I", role)
    finally:
        await engine.dispose()


def bootstrap_roles_sync(admin_url: str, plan: RolePlan) -> None:
    asyncio.run(bootstrap_roles(admin_url, plan))
