"""Outbound reading tokens from the real connection registry (libs/connections)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from outbound.adapters.tokens import RegistryTokenSource
from outbound.entrypoints.app import OutboundSettings, create_app
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_connections import ConnectionRegistry, PennylaneCompany, TokenCipher, migrate
from stockpit_contracts import parse_event
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_contracts.payloads.outbound import PennylaneIdAssigned, ProductChangeRequested
from stockpit_contracts.topics import OUTBOUND_RESULTS
from stockpit_testing.fixtures import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def connections_schema(database_url: str) -> Any:
    name = f"c_{uuid.uuid4().hex[:16]}"
    await migrate(database_url, name)
    yield name
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    await engine.dispose()


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
    )
    app = create_app(settings)
    change = ProductChangeRequested(
        product_id="p1", pennylane_product_id=product_id, label="Lampe LED", changed_at=kit.now()
    )
    try:
        async with app.router.lifespan_context(app):
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
