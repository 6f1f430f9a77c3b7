"""Fixtures of inventory's integration tests (real Kafka and PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from inventory.entrypoints.app import create_app
from stockpit_testing.fixtures import authorized_client, running_service
from stockpit_testing.inventory import inventory_settings


@pytest.fixture
async def inventory_app(
    kafka_bootstrap_servers: str, database_url: str, topic_prefix: str, db_schema: str
) -> AsyncIterator[FastAPI]:
    app = create_app(
        inventory_settings(kafka_bootstrap_servers, database_url, topic_prefix, db_schema)
    )
    async with running_service(app):
        yield app


@pytest.fixture
async def api(inventory_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An operator's client (every scope, every tenant) of the in-process inventory."""
    async with authorized_client(inventory_app, "http://inventory") as client:
        yield client
