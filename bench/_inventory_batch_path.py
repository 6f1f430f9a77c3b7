"""The inventory's documents batch path in one process, for comparing changes within a few
percent (docs/performance.md, "The main process's CPU per line"): the consumer's
`process_batch` with `documents_batch_handler` on real PostgreSQL, 2,000 products stocked at
their default location, batches of 300 invoices of 20 lines; `time.process_time` per batch
after a warm-up batch, printed with the median of the batches. Not part of `make bench`
(`run_all.sh` skips files whose name starts with `_`).

    uv run --frozen python bench/_inventory_batch_path.py   # BENCH_BATCHES (8)
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import statistics
import time
import uuid

import sqlalchemy as sa
from _inventory_stream import LINES_PER_INVOICE, catalog_product, invoice
from inventory.entrypoints.app import (
    MIGRATIONS,
    InventorySettings,
    _apply_catalog,
    _apply_document,
    documents_batch_handler,
    event_handler,
)
from stockpit_runtime.consumer import IncomingMessage, Outcome, ReliableConsumer
from stockpit_runtime.db import create_engine, session_factory
from stockpit_runtime.migrations import upgrade_to_head
from stockpit_runtime.service import tune_garbage_collection

PRODUCTS = 2_000
BATCH_INVOICES = 300
BATCHES = int(os.environ.get("BENCH_BATCHES", "8"))
TENANT = "bench"
PREFIX = "batchpath."


async def main() -> None:
    database_url = os.environ["DATABASE_URL"]
    schema = f"bench_batch_path_{uuid.uuid4().hex[:8]}"
    await upgrade_to_head(MIGRATIONS, database_url, schema)
    engine = create_engine(database_url, schema)
    try:
        consumer = ReliableConsumer(session_factory(engine), service="i", consumer_group="g")
        catalog = [catalog_product(TENANT, pennylane_id) for pennylane_id in range(1, PRODUCTS + 1)]
        offset = 0
        messages = []
        for event in catalog:
            messages.append(IncomingMessage("catalog", 0, offset, b"k", event.to_json(), ()))
            offset += 1
        outcomes = await consumer.process_batch(messages, event_handler(PREFIX, _apply_catalog))
        assert set(outcomes) == {Outcome.HANDLED}
        async with engine.begin() as connection:
            await connection.execute(
                sa.text(
                    """INSERT INTO stock_levels
                           (tenant_id, product_id, location_id, real, reserved, incoming)
                       SELECT :tenant, p.product_id::text, l.location_id::text, 1000000, 0, 0
                       FROM products p CROSS JOIN locations l"""
                ),
                {"tenant": TENANT},
            )
        one_by_one = event_handler(PREFIX, _apply_document)
        at_once = documents_batch_handler(PREFIX)
        rng = random.Random(7)
        tune_garbage_collection(InventorySettings())
        times: list[float] = []
        for batch in range(BATCHES + 1):
            first = batch * BATCH_INVOICES + 1
            chunk = []
            for number in range(first, first + BATCH_INVOICES):
                event = invoice(rng, TENANT, number, range(1, PRODUCTS + 1))
                chunk.append(IncomingMessage("documents", 0, offset, b"k", event.to_json(), ()))
                offset += 1
            gc.collect()
            started = time.process_time()
            outcomes = await consumer.process_batch(chunk, one_by_one, at_once)
            spent = time.process_time() - started
            assert set(outcomes) == {Outcome.HANDLED}, outcomes
            if batch:  # the first is the warm-up
                times.append(1e6 * spent / (BATCH_INVOICES * LINES_PER_INVOICE))
        print("batch path CPU ms per 1,000 lines:", " ".join(f"{t:.1f}" for t in times))
        print(f"median: {statistics.median(times):.1f}")
    finally:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
