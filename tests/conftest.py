"""Fixtures for the cross-service tests, and how the whole suite is spread over workers.

`make test` runs the suite on several pytest-xdist workers (`-n`): most of its time is spent
waiting (sync intervals, rate limits, process restarts), not computing, so the waits overlap.
Each worker takes the next test from the front of the collection, which is sorted here so the
longest tests start first and the short ones fill the gaps at the end: tests that declare a
longer timeout, then end-to-end tests (the whole system as processes), then other integration
tests, then unit tests. Tests are independent (own topic prefix, own schemas, free ports), so
any order and any split is a valid one, except that a module whose tests share one running
system (a module-scoped fixture) goes to one worker, so the system starts once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from inventory.entrypoints.app import InventorySettings, create_app
from stockpit_testing.fixtures import running_service


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
    async with running_service(app):
        yield app


def _declared_timeout_s(item: pytest.Item) -> float:
    timeout = item.get_closest_marker("timeout")
    return float(timeout.args[0]) if timeout and timeout.args else 0.0


def _is_long(item: pytest.Item) -> bool:
    return _declared_timeout_s(item) > 0 or item.get_closest_marker("e2e") is not None


def _start_order(item: pytest.Item) -> tuple[float, int]:
    if item.get_closest_marker("e2e"):
        kind = 0
    elif item.get_closest_marker("integration"):
        kind = 1
    else:
        kind = 2
    return -_declared_timeout_s(item), kind


def _unit(item: pytest.Item) -> str:
    module = item.nodeid.split("::", 1)[0]
    return module if module in ONE_WORKER_MODULES else item.nodeid


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest first (a stable sort: within a kind, the collection order stays).

    An xdist worker always holds the test it runs and the next one; were that next one long
    too, it would wait behind the first while another worker sat idle. So under xdist each
    long test is followed by a short one (a unit test), and every long test goes to the first
    worker that is free."""
    ordered = sorted(items, key=_start_order)
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers < 2:
        items[:] = ordered
        return
    units: dict[str, list[pytest.Item]] = {}
    for item in ordered:
        units.setdefault(_unit(item), []).append(item)
    longs = [unit for unit in units.values() if any(map(_is_long, unit))]
    others = [unit for unit in units.values() if not any(map(_is_long, unit))]
    # The quickest tests (the end of the order) are the fillers.
    fillers, others = others[len(others) - len(longs) :], others[: len(others) - len(longs)]
    arranged = longs[:workers] + fillers[:workers]
    for long, filler in zip(longs[workers:], fillers[workers:], strict=False):
        arranged += [long, filler]
    arranged += longs[workers + len(fillers[workers:]) :] + others
    items[:] = [item for unit in arranged for item in unit]


# Modules whose tests share one running system (a module-scoped fixture); one worker each.
ONE_WORKER_MODULES = frozenset(
    {
        "tests/test_e2e_hostile_payloads.py",
        "tests/test_e2e_stock_rules.py",
        "tests/test_e2e_settings_old_orders_duplicates.py",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist load` (the default with `-n`), test by test in the collection order above, but
    keeping each of ONE_WORKER_MODULES on one worker. (pytest-xdist's own `xdist_group` marks
    are ignored under pytest 9, whose node ids it can no longer suffix.)"""
    if config.getoption("dist") != "load":
        return None  # another --dist asked for explicitly: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):  # type: ignore[misc]  # xdist ships no types
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    config.option.loadscopereorder = False  # keep the collection order: longest first
    return LongestFirst(config, log)
