"""Inventory benchmark: invoice lines applied per second from Kafka into PostgreSQL.

2,000 products imported through the catalog topic, stock seeded at 3 locations, then invoices
of 20 lines published on the documents topic in three phases, the tenant's default location
switched between phases so every location takes sales. The inventory service and its outbox
relay (`stockpit-relay`) run as processes of their own (as deployed) on their own topics and
schema (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL from the env);
a phase is timed from its first publish until the consumer's inbox holds every invoice, so the
figure covers Kafka, the domain, the ledger, the levels and the outbox of stock events; the
relay's figure until the outbox is empty again (every stock event on Kafka).

The baseline, in the same run: plain asyncpg making the same row changes for the same lines
(one ledger row per line, each touched level moved by `real = real + delta`) on tables of the
same shape in a schema of its own, the better of the two ways a competent author would write:
  - per invoice: one transaction, the ledger inserts and the level upserts each sent with
    `executemany`;
  - per batch of invoices: one transaction, a `COPY` of the batch's ledger rows and one
    set-based upsert of the summed level deltas.
The service does more than either (domain rules, the inbox, Kafka in and out, a stock event per
ledger entry), so the target ratio is well below 1.

Prints:
  inventory.lines_per_s                 invoice lines applied by the service (target >= 10,000)
  inventory.published_lines_per_s       the same lines until their stock events left the outbox
  inventory.raw_executemany_lines_per_s plain asyncpg, per invoice with executemany
  inventory.raw_copy_lines_per_s        plain asyncpg, per batch with COPY and a set-based upsert
  inventory.raw_asyncpg_lines_per_s     the better of the two
  inventory.vs_raw_asyncpg              the service against it (target >= 0.25)
  inventory.service_cpu_ms_per_1000_lines   CPU of the service and of its relay
  inventory.service_main_cpu_ms_per_1000_lines  of which the service's own process
  inventory.relay_cpu_ms_per_1000_lines     of which the relay's
  inventory.postgres_cpu_ms_per_1000_lines  CPU of every PostgreSQL process, same phases

`BENCH_INVOICES_PER_PHASE` (600) sizes the run. `BENCH_TENANTS` (1) spreads each phase's invoices
round-robin over that many tenants, each with the same 2,000 products at 3 locations, chosen so
their keys land evenly on the documents topic's partitions (`STOCKPIT_TOPIC_PARTITIONS`, as the
service creates it): with one tenant every document is on one partition, so only one consumer
of the service (`STOCKPIT_DOCUMENTS_CONSUMERS`) has work. `BENCH_PROFILER`, a command with
`{pid}` in it (e.g. `py-spy record -r 100 -f raw -o inventory.raw -p {pid}`), is started on the
service's process before the first phase and interrupted after the last, so a profile covers the
timed phases only.
"""

from __future__ import annotations

import asyncio
import os
import random
import shlex
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import psutil
from _inventory_stream import (
    LINES_PER_INVOICE,
    catalog_product,
    cpu_s,
    invoice,
    plain_dsn,
    publish,
    spread_tenants,
    wait_inbox,
)
from stockpit_contracts.payloads.documents import (
    DocumentVersionRead,
)
from stockpit_contracts.topics import PENNYLANE_CATALOG, PENNYLANE_DOCUMENTS
from stockpit_ops.processes import relay_process, service_process
from stockpit_runtime.auth import LocalAuthority

PRODUCTS = 2_000
CATALOG = range(1, PRODUCTS + 1)
LOCATIONS = 3
INVOICES_PER_PHASE = int(os.environ.get("BENCH_INVOICES_PER_PHASE", "600"))
TENANT = "bench"
TENANT_COUNT = int(os.environ.get("BENCH_TENANTS", "1"))
TENANTS = (
    [TENANT]
    if TENANT_COUNT == 1
    else spread_tenants(TENANT_COUNT, int(os.environ.get("STOCKPIT_TOPIC_PARTITIONS", "6")))
)
RAW_COPY_BATCH_INVOICES = 100
RawWay = Callable[[asyncpg.Connection, str, list[list[tuple[str, Decimal]]]], Awaitable[None]]


def _service_processes(*pids: int) -> list[psutil.Process]:
    """The service and its relay, with their children."""
    roots = [psutil.Process(pid) for pid in pids]
    return [process for root in roots for process in (root, *root.children(recursive=True))]


def _postgres_cpu_s() -> dict[int, float]:
    """CPU seconds of every PostgreSQL process, by pid (backends come and go during a phase:
    one that started counts from zero, one that ended is missed)."""
    return {
        process.pid: process.info["cpu_times"].user + process.info["cpu_times"].system
        for process in psutil.process_iter(["name", "cpu_times"])
        if process.info["name"] in {"postgres", "postmaster"} and process.info["cpu_times"]
    }


def _postgres_cpu_since(before: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in _postgres_cpu_s().items())


def _start_profiler(pid: int) -> subprocess.Popen[bytes] | None:
    command = os.environ.get("BENCH_PROFILER")
    if not command:
        return None
    profiler = subprocess.Popen(shlex.split(command.format(pid=pid)))
    time.sleep(1)  # attached before the first publish
    return profiler


def _stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        profiler.wait(timeout=60)


async def _wait_outbox_empty(connection: asyncpg.Connection, schema: str) -> None:
    async with asyncio.timeout(600):
        while True:
            if not await connection.fetchval(f'SELECT EXISTS (SELECT FROM "{schema}".outbox)'):
                return
            await asyncio.sleep(0.02)


async def _service_run(
    bootstrap: str, database_url: str
) -> tuple[float, float, float, float, float, list[list[tuple[str, Decimal]]]]:
    """Lines per second of the service (until applied, until published) and the CPU seconds of
    the service with its relay, of the relay and of PostgreSQL during the timed phases; returns
    the lines as (product key, qty) per invoice."""
    run = uuid.uuid4().hex[:8]
    prefix, schema = f"bench{run}.", f"bench_inventory_{run}"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    authority = LocalAuthority.create(log_dir / "auth")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": prefix,
        "STOCKPIT_DB_SCHEMA": schema,
        "STOCKPIT_LOG_LEVEL": "WARNING",
        **authority.service_env(),
    }
    service = service_process("inventory", env=env, log_dir=log_dir)
    relay = relay_process("inventory", env=env, log_dir=log_dir)
    rng = random.Random(7)
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        await asyncio.to_thread(service.start)
        await asyncio.to_thread(relay.start)
        try:
            base_url = service.ready_url.rsplit("/health", 1)[0]
            async with httpx.AsyncClient(
                base_url=base_url, timeout=60, headers=authority.headers()
            ) as api:
                locations: dict[str, list[str]] = {}
                for tenant in TENANTS:
                    # The tenant's first change creates its settings and "Principal" location.
                    (await api.put(f"/tenants/{tenant}/settings", json={})).raise_for_status()
                    for name in ("Entrepôt", "Boutique"):
                        (
                            await api.post(f"/tenants/{tenant}/locations", json={"name": name})
                        ).raise_for_status()
                    locations[tenant] = [
                        row["location_id"]
                        for row in (await api.get(f"/tenants/{tenant}/locations")).json()
                    ]
                    assert len(locations[tenant]) == LOCATIONS
                products = [
                    catalog_product(tenant, pennylane_id)
                    for tenant in TENANTS
                    for pennylane_id in range(1, PRODUCTS + 1)
                ]
                await publish(bootstrap, PENNYLANE_CATALOG, prefix, products)
                await wait_inbox(connection, schema, f"{prefix}inventory.catalog", len(products))
                # Seed stock at every location (level rows and their ledger entries).
                await connection.execute(
                    f'''INSERT INTO "{schema}".stock_levels
                            (tenant_id, product_id, location_id, real, reserved, incoming)
                        SELECT p.tenant_id, p.product_id::text, l.location_id::text, 100, 0, 0
                        FROM "{schema}".products p
                        JOIN "{schema}".locations l USING (tenant_id)''',
                )
                await connection.execute(
                    f'''INSERT INTO "{schema}".stock_ledger (tenant_id, product_id, location_id,
                            delta_real, delta_reserved, delta_incoming, cause, cause_kind)
                        SELECT tenant_id, product_id, location_id, real, 0, 0, 'seed',
                            'manual_adjustment'
                        FROM "{schema}".stock_levels''',
                )
                group = f"{prefix}inventory.documents"
                assert service.process is not None
                assert relay.process is not None
                elapsed = published = service_cpu = relay_cpu = postgres_cpu = 0.0
                all_lines: list[list[tuple[str, Decimal]]] = []
                profiler = _start_profiler(service.process.pid)
                for phase in range(LOCATIONS):
                    for tenant in TENANTS:
                        response = await api.put(
                            f"/tenants/{tenant}/settings",
                            json={"default_location_id": locations[tenant][phase]},
                        )
                        response.raise_for_status()
                    first = phase * INVOICES_PER_PHASE + 1
                    events = [
                        invoice(rng, TENANTS[pennylane_id % len(TENANTS)], pennylane_id, CATALOG)
                        for pennylane_id in range(first, first + INVOICES_PER_PHASE)
                    ]
                    for event in events:
                        payload = event.payload
                        assert isinstance(payload, DocumentVersionRead)
                        location = locations[event.tenant_id][phase]
                        all_lines.append(
                            [
                                (f"{line.product.pennylane_id}:{location}", line.quantity)
                                for line in payload.lines
                                if line.product
                            ]
                        )
                    service_processes = _service_processes(service.process.pid, relay.process.pid)
                    relay_processes = _service_processes(relay.process.pid)
                    relay_before = cpu_s(relay_processes)
                    service_before = cpu_s(service_processes)
                    postgres_before = _postgres_cpu_s()
                    started = time.perf_counter()
                    await publish(bootstrap, PENNYLANE_DOCUMENTS, prefix, events)
                    await wait_inbox(connection, schema, group, (phase + 1) * INVOICES_PER_PHASE)
                    elapsed += time.perf_counter() - started
                    await _wait_outbox_empty(connection, schema)
                    published += time.perf_counter() - started
                    service_cpu += cpu_s(service_processes) - service_before
                    relay_cpu += cpu_s(relay_processes) - relay_before
                    postgres_cpu += _postgres_cpu_since(postgres_before)
                _stop_profiler(profiler)
                for tenant in TENANTS:
                    reconciliation = await api.get(f"/tenants/{tenant}/reconciliation")
                    assert reconciliation.json()["balanced"], f"{tenant}: levels and ledger differ"
                entries = await connection.fetchval(
                    f"SELECT count(*) FROM \"{schema}\".stock_ledger WHERE cause_kind = 'document'"
                )
                assert entries == LOCATIONS * INVOICES_PER_PHASE * LINES_PER_INVOICE, entries
        finally:
            relay.stop()
            service.stop()
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()
    lines = LOCATIONS * INVOICES_PER_PHASE * LINES_PER_INVOICE
    return lines / elapsed, lines / published, service_cpu, relay_cpu, postgres_cpu, all_lines


RAW_TABLES = """
    CREATE TABLE "{schema}".stock_levels (
        tenant_id text, product_id text, location_id text,
        real numeric(20, 6) NOT NULL, reserved numeric(20, 6) NOT NULL,
        incoming numeric(20, 6) NOT NULL,
        PRIMARY KEY (tenant_id, product_id, location_id));
    CREATE TABLE "{schema}".stock_ledger (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id text NOT NULL, product_id text NOT NULL, location_id text NOT NULL,
        delta_real numeric(20, 6) NOT NULL, delta_reserved numeric(20, 6) NOT NULL,
        delta_incoming numeric(20, 6) NOT NULL, cause text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX ON "{schema}".stock_ledger (tenant_id, product_id, location_id);
"""
LedgerRow = tuple[str, str, str, Decimal, Decimal, Decimal, str]


def _ledger_rows(number: int, lines: list[tuple[str, Decimal]]) -> list[LedgerRow]:
    rows: list[LedgerRow] = []
    for key, quantity in sorted(lines):
        product, location = key.split(":")
        rows.append(
            (TENANT, product, location, -quantity, Decimal(0), Decimal(0), f"invoice:{number}")
        )
    return rows


async def _per_invoice_executemany(
    connection: asyncpg.Connection, schema: str, invoices: list[list[tuple[str, Decimal]]]
) -> None:
    insert_ledger = f'''INSERT INTO "{schema}".stock_ledger (tenant_id, product_id, location_id,
            delta_real, delta_reserved, delta_incoming, cause)
        VALUES ($1, $2, $3, $4, $5, $6, $7)'''
    upsert_level = f'''INSERT INTO "{schema}".stock_levels AS l VALUES ($1, $2, $3, $4, 0, 0)
        ON CONFLICT (tenant_id, product_id, location_id)
        DO UPDATE SET real = l.real + EXCLUDED.real'''
    for number, lines in enumerate(invoices):
        rows = _ledger_rows(number, lines)
        async with connection.transaction():
            await connection.executemany(insert_ledger, rows)
            await connection.executemany(upsert_level, [row[:4] for row in rows])


async def _per_batch_copy(
    connection: asyncpg.Connection, schema: str, invoices: list[list[tuple[str, Decimal]]]
) -> None:
    upsert_levels = f'''INSERT INTO "{schema}".stock_levels AS l
            SELECT $1, d.product_id, d.location_id, d.delta, 0, 0
            FROM unnest($2::text[], $3::text[], $4::numeric[])
                AS d(product_id, location_id, delta)
            ORDER BY d.product_id, d.location_id
        ON CONFLICT (tenant_id, product_id, location_id)
        DO UPDATE SET real = l.real + EXCLUDED.real'''
    columns = [
        "tenant_id",
        "product_id",
        "location_id",
        "delta_real",
        "delta_reserved",
        "delta_incoming",
        "cause",
    ]
    for first in range(0, len(invoices), RAW_COPY_BATCH_INVOICES):
        rows: list[LedgerRow] = []
        for number in range(first, min(first + RAW_COPY_BATCH_INVOICES, len(invoices))):
            rows.extend(_ledger_rows(number, invoices[number]))
        deltas: dict[tuple[str, str], Decimal] = {}
        for _, product, location, delta, *_ in rows:
            deltas[product, location] = deltas.get((product, location), Decimal(0)) + delta
        keys = sorted(deltas)
        async with connection.transaction():
            await connection.copy_records_to_table(
                "stock_ledger", schema_name=schema, columns=columns, records=rows
            )
            await connection.execute(
                upsert_levels,
                TENANT,
                [product for product, _ in keys],
                [location for _, location in keys],
                [deltas[key] for key in keys],
            )


async def _raw_run(
    database_url: str, invoices: list[list[tuple[str, Decimal]]], way: RawWay
) -> float:
    schema = f"bench_raw_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        await connection.execute(RAW_TABLES.format(schema=schema))
        started = time.perf_counter()
        await way(connection, schema, invoices)
        elapsed = time.perf_counter() - started
        ledger = await connection.fetchval(f'SELECT count(*) FROM "{schema}".stock_ledger')
        assert ledger == sum(len(lines) for lines in invoices), ledger
        await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await connection.close()
    return sum(len(lines) for lines in invoices) / elapsed


async def main() -> None:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    database_url = os.environ["DATABASE_URL"]
    (
        service_rate,
        published_rate,
        service_cpu,
        relay_cpu,
        postgres_cpu,
        invoices,
    ) = await _service_run(bootstrap, database_url)
    executemany_rate = await _raw_run(database_url, invoices, _per_invoice_executemany)
    copy_rate = await _raw_run(database_url, invoices, _per_batch_copy)
    raw_rate = max(executemany_rate, copy_rate)
    thousands = sum(len(lines) for lines in invoices) / 1000
    print(f"inventory.lines_per_s: {service_rate:.0f} lines/s (target >= 10000)")
    print(f"inventory.tenants: {len(TENANTS)} tenants")
    print(f"inventory.published_lines_per_s: {published_rate:.0f} lines/s")
    print(f"inventory.raw_executemany_lines_per_s: {executemany_rate:.0f} lines/s")
    print(f"inventory.raw_copy_lines_per_s: {copy_rate:.0f} lines/s")
    print(f"inventory.raw_asyncpg_lines_per_s: {raw_rate:.0f} lines/s")
    print(f"inventory.vs_raw_asyncpg: {service_rate / raw_rate:.2f} ratio (target >= 0.25)")
    print(f"inventory.service_cpu_ms_per_1000_lines: {1000 * service_cpu / thousands:.0f} ms")
    main_cpu = service_cpu - relay_cpu
    print(f"inventory.service_main_cpu_ms_per_1000_lines: {1000 * main_cpu / thousands:.0f} ms")
    print(f"inventory.relay_cpu_ms_per_1000_lines: {1000 * relay_cpu / thousands:.0f} ms")
    print(f"inventory.postgres_cpu_ms_per_1000_lines: {1000 * postgres_cpu / thousands:.0f} ms")


if __name__ == "__main__":
    asyncio.run(main())
