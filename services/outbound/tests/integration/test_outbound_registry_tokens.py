"""Outbound reading tokens from the real connection registry (libs/connections)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from outbound.adapters.tokens import RegistryTokenSource
from outbound.entrypoints.app import OutboundService, OutboundSettings, create_app
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_connections import ConnectionRegistry, PennylaneCompany, TokenCipher, migrate
from stockpit_contracts import parse_event
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_contracts.payloads.outbound import PennylaneIdAssigned, ProductChangeRequested
from stockpit_contracts.topics import OUTBOUND_RESULTS
from stockpit_pennylane.client import PENNYLANE_RATE_LIMIT
from stockpit_pennylane.client.ratelimit import share_to_requests
from stockpit_testing.fixtures import authorized_client, drop_schemas, read_topic, running_service

pytestmark = pytest.mark.integration


@pytest.fixture
async def connections_schema(database_url: str) -> Any:
    name = f"c_{uuid.uuid4().hex[:16]}"
    await migrate(database_url, name)
    yield name
    await drop_schemas(database_url, name)


def _registry_settings(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
    *,
    key: str,
    pennylane_base_url: str,
) -> OutboundSettings:
    """Outbound reading its tokens from the connection registry, writing to the sandbox."""
    return OutboundSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        DATABASE_URL=database_url,
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        token_key=SecretStr(key),
        connections_schema=connections_schema,
        pennylane_base_url=pennylane_base_url,
        startup_quiet_s=0,
        worker_poll_s=0.1,
    )


async def test_registry_token_source_follows_connect_and_disconnect(
    database_url: str, connections_schema: str
) -> None:
    engine = create_async_engine(database_url)
    registry = ConnectionRegistry(
        engine, TokenCipher(TokenCipher.generate_key()), schema=connections_schema
    )
    source = RegistryTokenSource(registry)
    try:
        assert await source.token_for("t1") is None
        assert await source.poller_share_for("t1") is None
        await registry.connect(
            "t1",
            SecretStr("secret-token"),
            ConnectionSettings(poller_rate_share=Decimal("0.7")),
            company=PennylaneCompany(1, "T1"),
        )
        token = await source.token_for("t1")
        assert token is not None
        assert token.get_secret_value() == "secret-token"
        assert await source.poller_share_for("t1") == Decimal("0.7")
        await registry.disconnect("t1")
        assert await source.token_for("t1") is None
        await registry.reconnect("t1")
        assert await source.token_for("t1") is not None
    finally:
        await engine.dispose()


async def test_outbound_writes_with_the_registrys_token(
    sandbox_for: Any,
    kit: Any,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
) -> None:
    sandbox = sandbox_for(["acme"])
    product_id = sandbox.create_product("acme", "Lampe", "L-0")
    key = TokenCipher.generate_key()
    engine = create_async_engine(database_url)
    registry = ConnectionRegistry(engine, TokenCipher(key), schema=connections_schema)
    await registry.connect(
        "acme",
        SecretStr(sandbox.tokens["acme"]),
        ConnectionSettings(),
        company=PennylaneCompany(1000, "Acme"),
    )
    settings = _registry_settings(
        kafka_bootstrap_servers,
        database_url,
        topic_prefix,
        db_schema,
        connections_schema,
        key=key,
        pennylane_base_url=sandbox.api_url,
    )
    app = create_app(settings)
    change = ProductChangeRequested(
        product_id="p1", pennylane_product_id=product_id, label="Lampe LED", changed_at=kit.now()
    )
    try:
        async with running_service(app):
            await kit.publish(kafka_bootstrap_servers, topic_prefix, [kit.event("acme", change)])
            records = await read_topic(
                kafka_bootstrap_servers, OUTBOUND_RESULTS.name(topic_prefix), expect=1
            )
    finally:
        await engine.dispose()
    (result,) = [parse_event(r.value) for r in records]
    assert isinstance(result.payload, PennylaneIdAssigned)
    product = next(p for p in sandbox.records("acme", "products") if p["id"] == product_id)
    assert product["label"] == "Lampe LED"


async def test_a_refused_token_holds_the_tenants_writes_until_a_new_one(
    sandbox_for: Any,
    kit: Any,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
) -> None:
    """Pennylane answers 401: that write waits with the reason, the tenant's other writes are
    not even tried (one request with the refused token, not one per write); a new token of the
    same company sends them all, in order."""
    sandbox = sandbox_for(["acme"])
    old_token = sandbox.tokens["acme"]
    lamp = sandbox.create_product("acme", "Lampe", "L-0")
    chair = sandbox.create_product("acme", "Chaise", "C-0")
    key = TokenCipher.generate_key()
    engine = create_async_engine(database_url)
    registry = ConnectionRegistry(engine, TokenCipher(key), schema=connections_schema)
    acme = PennylaneCompany(1000, "Acme")
    await registry.connect("acme", SecretStr(old_token), ConnectionSettings(), company=acme)
    new_token = f"{old_token}-renewed"
    sandbox.admin("POST", f"/{old_token}/revoke", {"new_token": new_token})
    sandbox.tokens["acme"] = new_token
    settings = OutboundSettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        DATABASE_URL=database_url,
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        token_key=SecretStr(key),
        connections_schema=connections_schema,
        pennylane_base_url=sandbox.api_url,
        startup_quiet_s=0,
        worker_poll_s=0.1,
        disconnected_recheck_s=0.2,
    )
    app = create_app(settings)
    changes = [
        ProductChangeRequested(
            product_id=pid, pennylane_product_id=pennylane_id, label=label, changed_at=kit.now()
        )
        for pid, pennylane_id, label in (("p1", lamp, "Lampe LED"), ("p2", chair, "Chaise bois"))
    ]

    def refused_requests() -> int:
        logged = sandbox.admin("GET", f"/{old_token}/requests")["requests"]
        return sum(entry["outcome"] == "revoked" for entry in logged)

    try:
        async with (
            running_service(app),
            authorized_client(app, "http://outbound") as client,
        ):
            await kit.publish(
                kafka_bootstrap_servers, topic_prefix, [kit.event("acme", c) for c in changes]
            )

            async def waiting() -> list[dict[str, Any]] | None:
                rows: list[dict[str, Any]] = (await client.get("/outbound/writes")).json()
                waits = [w for w in rows if w["last_error"] and "new token" in w["last_error"]]
                return rows if len(rows) == 2 and waits else None

            rows = await kit.wait_until(waiting)
            assert {w["status"] for w in rows} == {"pending"}, "nothing dead-lettered"
            # Rechecked many times over (every 0.2 s): still the one refused request.
            await kit.wait_until(lambda: refused_requests() >= 1)
            for _ in range(10):
                await asyncio.sleep(0.2)
            assert refused_requests() == 1
            assert (await client.get("/outbound/dead-letters")).json() == []

            await registry.connect("acme", SecretStr(new_token), ConnectionSettings(), company=acme)
            records = await read_topic(
                kafka_bootstrap_servers, OUTBOUND_RESULTS.name(topic_prefix), expect=2
            )
    finally:
        await engine.dispose()
    results = [parse_event(r.value).payload for r in records]
    assert all(isinstance(r, PennylaneIdAssigned) for r in results)
    labels = {p["id"]: p["label"] for p in sandbox.records("acme", "products")}
    assert labels[lamp] == "Lampe LED"
    assert labels[chair] == "Chaise bois"
    assert refused_requests() == 1


async def test_outbound_paces_to_what_the_poller_leaves_while_a_first_sync_runs(
    sandbox_for: Any,
    kit: Any,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
) -> None:
    """The tenant's first sync starts after outbound already holds a client at 0.4 of the token
    (10 requests a window): the writes that follow keep to what the first-sync share 0.9 leaves
    (2 a window), as Pennylane counts them."""
    sandbox = sandbox_for(["acme"])
    token = sandbox.tokens["acme"]
    products = [sandbox.create_product("acme", f"Lampe {n}", f"L-{n}") for n in range(5)]
    key = TokenCipher.generate_key()
    engine = create_async_engine(database_url)
    registry = ConnectionRegistry(engine, TokenCipher(key), schema=connections_schema)
    acme = PennylaneCompany(1000, "Acme")
    await registry.connect("acme", SecretStr(token), ConnectionSettings(), company=acme)
    settings = _registry_settings(
        kafka_bootstrap_servers,
        database_url,
        topic_prefix,
        db_schema,
        connections_schema,
        key=key,
        pennylane_base_url=sandbox.api_url,
    )
    app = create_app(settings)
    changes = [
        ProductChangeRequested(
            product_id=f"p{n}",
            pennylane_product_id=pid,
            label=f"Lampe LED {n}",
            changed_at=kit.now(),
        )
        for n, pid in enumerate(products)
    ]
    results = OUTBOUND_RESULTS.name(topic_prefix)
    try:
        async with running_service(app):
            await kit.publish(
                kafka_bootstrap_servers, topic_prefix, [kit.event("acme", changes[0])]
            )
            await read_topic(kafka_bootstrap_servers, results, expect=1)
            assert await registry.first_sync_started("acme")
            sandbox.admin("DELETE", f"/{token}/requests")
            await kit.publish(
                kafka_bootstrap_servers, topic_prefix, [kit.event("acme", c) for c in changes[1:]]
            )
            await read_topic(kafka_bootstrap_servers, results, expect=len(changes), timeout_s=120)
            during = sandbox.admin("GET", f"/{token}/requests")
    finally:
        await engine.dispose()
    assert len(during["requests"]) > 2 * 2, "long enough to span several windows"
    assert during["max_received_in_any_window"] <= 2, during["max_received_in_any_window"]
    labels = {p["id"]: p["label"] for p in sandbox.records("acme", "products")}
    assert [labels[pid] for pid in products] == [f"Lampe LED {n}" for n in range(5)]


async def test_outbounds_share_follows_the_first_sync_both_ways_and_keeps_one_request(
    database_url: str, connections_schema: str
) -> None:
    engine = create_async_engine(database_url)
    key = TokenCipher.generate_key()
    registry = ConnectionRegistry(
        engine, TokenCipher(key), schema=connections_schema, first_sync_handover=timedelta(0)
    )
    service = OutboundService(OutboundSettings(token_key=SecretStr(key)), tokens=None)
    service.sources.shares = RegistryTokenSource(registry)
    acme = PennylaneCompany(1000, "Acme")
    try:
        await registry.connect("acme", SecretStr("token-acme"), ConnectionSettings(), company=acme)
        assert await service.budget_share("acme") == Decimal("0.4")
        await registry.first_sync_started("acme")
        assert await service.budget_share("acme") == Decimal("0.1")
        await registry.first_sync_finished("acme")
        assert await service.budget_share("acme") == Decimal("0.4")
        settings = ConnectionSettings(poller_first_sync_rate_share=Decimal("0.96"))
        await registry.connect("acme", SecretStr("token-acme"), settings, company=acme)
        await registry.first_sync_started("acme")
        share = await service.budget_share("acme")
        assert share_to_requests(PENNYLANE_RATE_LIMIT, share) == 1
        await registry.disconnect("acme")
        assert await service.budget_share("acme") == Decimal("0.4")
    finally:
        await engine.dispose()
