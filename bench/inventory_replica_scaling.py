"""Inventory scaling with replicas: lines/s with two service processes, divided by one's.

Documents are keyed by tenant, so a stream from many tenants spreads over the documents
topic's partitions and a consumer group shares them between replicas. One run on fresh topics
(BENCH_SCALING_PARTITIONS partitions, 6 by default: 3 per replica) and a fresh schema:
BENCH_SCALING_TENANTS tenants (chosen so their keys hash evenly across the partitions), 100
products each imported through the catalog topic and stocked at the tenant's default location.
Then four phases of BENCH_SCALING_INVOICES invoices of 20 lines, published round-robin over the
tenants: with one inventory process, two (same consumer group, same schema), two, one —
alternated so that a change in the shared machine's other load weighs on both alike. A phase
starts once the group is stable with every replica holding partitions and is timed from its
first publish until the inbox holds its invoices; the ledger is checked at the end.

Prints:
  inventory.replica_scaling              two replicas' lines/s over one's (target >= 1.5 on 2 cores)
  inventory.replicas_1_lines_per_s       one replica
  inventory.replicas_2_lines_per_s       two replicas
  inventory.replicas_<n>_cpu_ms_per_1000_lines.<who>   CPU per 1,000 lines of each replica
                                         and of every PostgreSQL process (the outbox relay
                                         runs beside them, not counted)
  inventory.replicas_2_partitions        partitions of the documents topic each replica consumed
  inventory.replicas_<n>_cores_busy      CPU of the replicas and PostgreSQL over the phases' time,
                                         and of the whole machine (neighbours included)
  inventory.scaling_invoices_per_partition   where the tenants' invoices landed
  inventory.machine_cpus                 the cores the processes share (the ceiling of scaling)

Each replica runs STOCKPIT_DOCUMENTS_CONSUMERS consumers of the documents topic (2, the
service's default): one replica then already overlaps one batch's Python with another's writes,
which is most of what a second replica gave when each ran one consumer.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
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
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from stockpit_contracts.topics import PENNYLANE_CATALOG, PENNYLANE_DOCUMENTS
from stockpit_ops.processes import ManagedProcess, relay_process, service_process
from stockpit_runtime.auth import LocalAuthority
from stockpit_runtime.kafka import delete_topics
from stockpit_runtime.kafka_security import kafka_options

PARTITIONS = int(os.environ.get("BENCH_SCALING_PARTITIONS", "6"))
TENANTS = int(os.environ.get("BENCH_SCALING_TENANTS", "24"))
INVOICES = int(os.environ.get("BENCH_SCALING_INVOICES", "2400"))
# Each replica's consumers of the documents topic (the service's default, 2, unless set).
CONSUMERS = int(os.environ.get("STOCKPIT_DOCUMENTS_CONSUMERS", "2"))
PRODUCTS_PER_TENANT = 100
CATALOG = range(1, PRODUCTS_PER_TENANT + 1)


@dataclass
class Totals:
    """What the phases run with a number of replicas add up to."""

    lines: int = 0
    seconds: float = 0.0
    replica_cpu_s: list[float] = field(default_factory=list)
    postgres_cpu_s: float = 0.0
    machine_busy_s: float = 0.0  # CPU time of every process on the machine, neighbours included
    partitions: list[int] = field(default_factory=list)  # held by each replica
    per_partition: Counter[int] = field(default_factory=Counter)  # invoices published

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _tree(process: ManagedProcess) -> list[psutil.Process]:
    assert process.process is not None
    root = psutil.Process(process.process.pid)
    return [root, *root.children(recursive=True)]


def _postgres_processes() -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["name"]) if p.info["name"] in {"postgres", "postmaster"}
    ]


async def _assignments(bootstrap: str, group: str, replicas: int) -> list[int]:
    """Wait until the group is stable with one member per replica, each holding partitions;
    return how many partitions each member holds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        async with asyncio.timeout(120):
            while True:
                (response,) = await admin.describe_consumer_groups([group])
                _, _, state, _, _, members, *_ = response.groups[0]
                held = [
                    len(ConsumerProtocolMemberAssignment.decode(member[4]).partitions())
                    for member in members
                    if member[4]
                ]
                if state == "Stable" and len(held) == replicas and all(held):
                    return sorted(held)
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


@dataclass
class Bench:
    bootstrap: str
    database_url: str
    tenants: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    authority: LocalAuthority = field(
        default_factory=lambda: LocalAuthority.create(
            Path(tempfile.mkdtemp(prefix="bench-scaling-auth-"))
        )
    )

    @property
    def prefix(self) -> str:
        return f"benchscale{self.run_id}."

    @property
    def schema(self) -> str:
        return f"bench_scaling_{self.run_id}"

    @property
    def group(self) -> str:
        return f"{self.prefix}inventory.documents"

    def replica(self, number: int) -> ManagedProcess:
        log_dir = Path(tempfile.mkdtemp(prefix=f"bench-scaling-replica-{number}-"))
        return service_process("inventory", env=self.env, log_dir=log_dir)

    def relay(self) -> ManagedProcess:
        """The schema's outbox relay, as deployed beside the replicas."""
        log_dir = Path(tempfile.mkdtemp(prefix="bench-scaling-relay-"))
        return relay_process("inventory", env=self.env, log_dir=log_dir)

    @property
    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "STOCKPIT_TOPIC_PREFIX": self.prefix,
            "STOCKPIT_DB_SCHEMA": self.schema,
            "STOCKPIT_TOPIC_PARTITIONS": str(PARTITIONS),
            "STOCKPIT_DOCUMENTS_CONSUMERS": str(CONSUMERS),
            "STOCKPIT_LOG_LEVEL": "WARNING",
            **self.authority.service_env(),
        }

    async def set_up(self, connection: asyncpg.Connection, replica: ManagedProcess) -> None:
        """Every tenant's settings (and default location) and products, stocked."""
        base_url = replica.ready_url.rsplit("/health", 1)[0]
        async with httpx.AsyncClient(
            base_url=base_url, timeout=60, headers=self.authority.headers()
        ) as api:
            for tenant in self.tenants:
                # The tenant's first change creates its settings and default location.
                (await api.put(f"/tenants/{tenant}/settings", json={})).raise_for_status()
        catalog = [
            catalog_product(tenant, pennylane_id)
            for tenant in self.tenants
            for pennylane_id in range(1, PRODUCTS_PER_TENANT + 1)
        ]
        await publish(self.bootstrap, PENNYLANE_CATALOG, self.prefix, catalog)
        await wait_inbox(connection, self.schema, f"{self.prefix}inventory.catalog", len(catalog))
        schema = self.schema
        await connection.execute(
            f'''INSERT INTO "{schema}".stock_levels
                    (tenant_id, product_id, location_id, real, reserved, incoming)
                SELECT p.tenant_id, p.product_id::text, l.location_id::text, 100, 0, 0
                FROM "{schema}".products p
                JOIN "{schema}".locations l ON l.tenant_id = p.tenant_id''',
        )
        await connection.execute(
            f'''INSERT INTO "{schema}".stock_ledger (tenant_id, product_id, location_id,
                    delta_real, delta_reserved, delta_incoming, cause, cause_kind)
                SELECT tenant_id, product_id, location_id, real, 0, 0, 'seed',
                    'manual_adjustment'
                FROM "{schema}".stock_levels''',
        )

    async def phase(
        self,
        connection: asyncpg.Connection,
        replicas: list[ManagedProcess],
        first_id: int,
        totals: Totals,
    ) -> None:
        """INVOICES invoices published and applied by `replicas`, added to `totals`."""
        partitions = await _assignments(self.bootstrap, self.group, len(replicas) * CONSUMERS)
        rng = random.Random(first_id)
        invoices = [
            invoice(rng, self.tenants[i % len(self.tenants)], i, CATALOG)
            for i in range(first_id, first_id + INVOICES)
        ]
        trees = [_tree(replica) for replica in replicas]
        postgres = _postgres_processes()
        replica_before = [cpu_s(tree) for tree in trees]
        postgres_before = cpu_s(postgres)
        machine_before = _machine_busy_s()
        done_before = await connection.fetchval(
            f'SELECT count(*) FROM "{self.schema}".inbox WHERE consumer_group = $1', self.group
        )
        started = time.perf_counter()
        per_partition = await publish(self.bootstrap, PENNYLANE_DOCUMENTS, self.prefix, invoices)
        await wait_inbox(connection, self.schema, self.group, done_before + len(invoices))
        totals.seconds += time.perf_counter() - started
        used = [cpu_s(tree) - before for tree, before in zip(trees, replica_before, strict=True)]
        totals.replica_cpu_s = [
            a + b for a, b in zip(totals.replica_cpu_s or [0.0] * len(used), used, strict=True)
        ]
        totals.postgres_cpu_s += cpu_s(postgres) - postgres_before
        totals.machine_busy_s += _machine_busy_s() - machine_before
        totals.lines += INVOICES * LINES_PER_INVOICE
        totals.partitions = partitions
        totals.per_partition += per_partition


async def run(bench: Bench) -> dict[int, Totals]:
    """Phases with one replica and with two, alternated (1, 2, 2, 1) so that a change in the
    machine's other load weighs on both alike; one schema and one consumer group throughout."""
    first, second, relay = bench.replica(1), bench.replica(2), bench.relay()
    totals = {1: Totals(), 2: Totals()}
    connection = await asyncpg.connect(plain_dsn(bench.database_url))
    try:
        try:
            await asyncio.to_thread(first.start)
            await asyncio.to_thread(relay.start)
            await bench.set_up(connection, first)
            plan = [[first], [first, second], [first, second], [first]]
            for index, replicas in enumerate(plan):
                if second in replicas and second.process is None:
                    await asyncio.to_thread(second.start)
                if second not in replicas and second.process is not None:
                    await asyncio.to_thread(second.stop)
                    second.process = None
                await bench.phase(connection, replicas, 1 + index * INVOICES, totals[len(replicas)])
            entries = await connection.fetchval(
                f'SELECT count(*) FROM "{bench.schema}".stock_ledger '
                "WHERE cause_kind = 'document'"
            )
            assert entries == len(plan) * INVOICES * LINES_PER_INVOICE, entries
        finally:
            for process in (first, second, relay):
                await asyncio.to_thread(process.stop)
        await connection.execute(f'DROP SCHEMA IF EXISTS "{bench.schema}" CASCADE')
        await delete_topics(bench.bootstrap, bench.prefix)
    finally:
        await connection.close()
    return totals


async def main() -> None:
    tenants = spread_tenants(TENANTS, PARTITIONS)
    bench = Bench(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["DATABASE_URL"], tenants)
    results = await run(bench)
    one, two = results[1], results[2]
    print(
        f"inventory.replica_scaling: {two.lines_per_s / one.lines_per_s:.2f} ratio "
        "(target >= 1.5 on 2 cores)"
    )
    for n, result in results.items():
        thousands = result.lines / 1000
        print(f"inventory.replicas_{n}_lines_per_s: {result.lines_per_s:.0f} lines/s")
        for index, cpu in enumerate(result.replica_cpu_s):
            print(
                f"inventory.replicas_{n}_cpu_ms_per_1000_lines.replica_{index + 1}: "
                f"{1000 * cpu / thousands:.0f} ms"
            )
        print(
            f"inventory.replicas_{n}_cpu_ms_per_1000_lines.postgres: "
            f"{1000 * result.postgres_cpu_s / thousands:.0f} ms"
        )
        busy = (sum(result.replica_cpu_s) + result.postgres_cpu_s) / result.seconds
        machine = result.machine_busy_s / result.seconds
        print(
            f"inventory.replicas_{n}_cores_busy: {busy:.2f} cores by the replicas and PostgreSQL, "
            f"{machine:.2f} by the whole machine"
        )
    held = " + ".join(str(p) for p in two.partitions)
    print(f"inventory.replicas_2_partitions: {held} partitions of {PARTITIONS}")
    spread = " ".join(f"p{p}={two.per_partition[p]}" for p in sorted(two.per_partition))
    print(f"inventory.scaling_invoices_per_partition: {spread} ({TENANTS} tenants)")
    print(f"inventory.machine_cpus: {psutil.cpu_count()} cores")
    print(f"inventory.documents_consumers_per_replica: {CONSUMERS} consumers")


if __name__ == "__main__":
    asyncio.run(main())
