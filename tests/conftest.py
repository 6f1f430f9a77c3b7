"""Fixtures for the cross-service tests, and the order the whole suite runs in.

`make test` runs the suite on several pytest-xdist workers (`--dist loadgroup`); most of its
time is spent waiting (sync intervals, rate limits, process restarts), not computing, so the
waits overlap. Each worker takes the next test from the front of the collection, which is
sorted here so the longest tests start first and the short ones fill the gaps at the end:
tests that declare a longer timeout, then end-to-end tests (whole system as processes), then
other integration tests, then unit tests. Tests are independent (own topic prefix, own schemas,
free ports), so any order is a valid one.
"""

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


def _start_order(item: pytest.Item) -> tuple[float, int]:
    timeout = item.get_closest_marker("timeout")
    declared_timeout_s = float(timeout.args[0]) if timeout and timeout.args else 0.0
    if item.get_closest_marker("e2e"):
        kind = 0
    elif item.get_closest_marker("integration"):
        kind = 1
    else:
        kind = 2
    return -declared_timeout_s, kind


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest tests first (a stable sort: within a kind, the collection order stays)."""
    items[:] = sorted(items, key=_start_order)
