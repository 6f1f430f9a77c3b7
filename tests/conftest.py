"""Fixtures for the cross-service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from inventory.entrypoints.app import InventorySettings, create_app


@pytest.fixture
async def inventory(
    kafka_bootstrap_servers: str, database_url: str, topic_prefix: str, db_schema: str
) -> AsyncIterator[FastAPI]:
    """The inventory service in-process, on its own topics and schema, retrying little."""
    settings = InventorySettings(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap_servers,
        DATABASE_URL=database_url,
        topic_prefix=topic_prefix,
        db_schema=db_schema,
        consumer_max_attempts=2,
        consumer_retry_backoff_s=0.01,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app
