"""Benchmark: how many connected tenants one poller replica keeps on a 60 s interval.

Each tenant is its own sandbox company with its own token (added at run time through the
sandbox admin), a few invoices to start with and a few new ones per interval (a feeder seeds
`BENCH_DOCS_PER_SYNC` invoices per tenant per interval, spread over the interval). The interval
is set the way Stockpit sets it: `inventory.settings.changed` on `stockpit.inventory.settings`;
each tenant connects through the first replica's HTTP API (which proves the token with `/me`).

Steps of N tenants (`BENCH_TENANT_STEPS`, default 500,1000,2000,3000): the tenants missing for N
are added, the bench waits until every one had its first sync (at most `BENCH_SETTLE_S`), then one
more interval, then measures for `BENCH_MEASURE_S`. The wait of one interval keeps the connect
surge out of the steady state: tenants added at once have their first syncs back to back, each
costing more than a sync, and while those run (new tenants first, by the scheduler's claim
order) the tenants already synced wait; a sync then starts one interval after its last start, so
once the surge has passed the schedule holds again or it does not. The surge is printed on its
own: the p99 start lag of the tenants already synced from the first connect of the step until
the window (`poller.p99_start_lag_s_while_connecting`) and how long a new tenant waited from its
connect to its first sync (`poller.first_sync_wait_p99_s`). The start lag of a sync is read from
the poller's own records (`sync_runs`): its start minus its due time, which is what the
scheduler computed from the run before it (one interval after that one started, or the retry
delay after a failure). A tenant whose due time passed in the window without a start counts with
the lag it had at the window's end, and a tenant never synced counts as failing the step. A step
holds when the p99 lag is under 5 s; the first step that does not hold ends the series.

Then the same with two replicas on the same tenants (they share them by lease), from the last
step one replica held (`BENCH_REPLICA_STEPS`; empty or 0: none). Each replica's own CPU per sync
(its CPU over the runs it started, by `sync_runs.replica_id`) is printed too.

Paired A/B of two trees: `BENCH_PAIR_PYTHONPATH` runs the second replica with that PYTHONPATH
first (e.g. a directory holding another version of the `poller` and `stockpit_runtime`
packages), so both versions share the same tenants under the same machine load and their CPU per
sync compares. On a shared machine that is the only way to see a change of a few percent: the
CPU time of the same work rises with the neighbours' load. The second replica's first sync of a
tenant also sets up that tenant's client, which costs more than a sync (docs/performance.md), so
in this mode the window starts three intervals after it started; the few tenants it has not
synced yet by then still cost it a little.

CPU-seconds are the poller processes' user+system time in the window, per 1,000 tenants and per
interval (one sync of each); RSS is the processes' resident memory at the end of the step, and
per 1,000 tenants the growth over the idle process. Everything runs on this machine: the sandbox
(its CPU share is printed), PostgreSQL and Kafka compete with the poller for the same cores.

Prints `name: value unit` lines. Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
Quick run: BENCH_TENANT_STEPS=100,200 BENCH_MEASURE_S=70 BENCH_REPLICA_STEPS=200.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from stockpit_connections import TokenCipher
from stockpit_contracts import new_event, partition_key
from stockpit_contracts.payloads.connections import MIN_SYNC_INTERVAL_S
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.topics import INVENTORY_SETTINGS
from stockpit_ops.processes import ManagedProcess, free_port, relay_process, wait_ready
from stockpit_runtime.auth import LocalAuthority
from stockpit_runtime.kafka_security import kafka_options


def _ints(name: str, default: str) -> list[int]:
    return [int(x) for x in os.environ.get(name, default).split(",") if x.strip()]


STEPS = _ints("BENCH_TENANT_STEPS", "500,1000,2000,3000")
REPLICA_STEPS = [n for n in _ints("BENCH_REPLICA_STEPS", ",".join(map(str, STEPS))) if n > 0]
PAIR_PYTHONPATH = os.environ.get("BENCH_PAIR_PYTHONPATH", "")
PAIR_WARMUP_INTERVALS = 3
INTERVAL_S = int(os.environ.get("BENCH_INTERVAL_S", "60"))
MEASURE_S = float(os.environ.get("BENCH_MEASURE_S", "150"))
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "300"))
DOCS_PER_SYNC = int(os.environ.get("BENCH_DOCS_PER_SYNC", "2"))
MAX_CONCURRENT_SYNCS = os.environ.get("BENCH_MAX_CONCURRENT_SYNCS", "32")
# Every sync run, appended at each step's end (for reading where a tail comes from).
RUNS_CSV = os.environ.get("BENCH_RUNS_CSV", "")
LAG_TARGET_S = 5.0
TARGET_TENANTS = 2000
# After a failed sync the scheduler retries after this long (poller.domain.schedule).
FAILURE_RETRY_S = 30.0


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    stats: psutil.Process
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(cls, env: dict[str, str]) -> Replica:
        port = free_port()
        command = ["-m", "poller.entrypoints.app"]
        process = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
            [sys.executable, *command],
            env={**env, "STOCKPIT_HTTP_PORT": str(port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        replica = cls(process, psutil.Process(process.pid), port)
        await wait_ready(f"http://127.0.0.1:{port}/health/ready", 180)
        return replica

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Tenants:
    """The companies, tokens and connections, and a feeder adding documents to each."""

    sandbox: httpx.AsyncClient
    producer: AIOKafkaProducer
    prefix: str
    run: str
    # The first replica's HTTP API (connect is HTTP-only: it proves the token) and its operator.
    poller: httpx.AsyncClient
    authority: LocalAuthority
    ids: list[str] = field(default_factory=list)
    connected_at: dict[str, dt.datetime] = field(default_factory=dict)

    def token(self, tenant: str) -> str:
        return f"bench-token-{tenant}"

    async def _add_one(self, tenant: str, gate: asyncio.Semaphore, auth: dict[str, str]) -> None:
        token = self.token(tenant)
        async with gate:
            response = await self.sandbox.post("/_sandbox/companies", json={"token": token})
            response.raise_for_status()
            response = await self.sandbox.post(
                f"/_sandbox/{token}/seed/customer_invoices",
                json={"count": 3, "customers": 2, "products": 3, "max_lines": 3, "seed": 1},
            )
            response.raise_for_status()
            response = await self.poller.put(
                f"/connections/{tenant}", json={"pennylane_token": token}, headers=auth
            )
            response.raise_for_status()
            self.connected_at[tenant] = dt.datetime.now(dt.UTC)

    async def add(self, count: int) -> None:
        new = [f"{self.run}-{i:05d}" for i in range(len(self.ids), len(self.ids) + count)]
        # The interval first, as Stockpit would have it before the tenant connects.
        for tenant in new:
            settings = TenantSettingsChanged(sync_interval_s=INTERVAL_S)
            await self.producer.send(
                INVENTORY_SETTINGS.name(self.prefix),
                value=new_event(settings, tenant).to_json(),
                key=partition_key(tenant),
            )
        await self.producer.flush()
        gate = asyncio.Semaphore(16)
        auth = self.authority.headers()
        await asyncio.gather(*(self._add_one(t, gate, auth) for t in new))
        self.ids += new

    async def feed(self) -> None:
        """Every tenant gets DOCS_PER_SYNC new invoices per interval, spread evenly."""
        position = 0
        tick = 1.0
        while True:
            started = time.monotonic()
            if self.ids:
                batch = max(1, round(len(self.ids) * tick / INTERVAL_S))
                chosen = [self.ids[(position + i) % len(self.ids)] for i in range(batch)]
                position = (position + batch) % len(self.ids)
                await asyncio.gather(
                    *(
                        self.sandbox.post(
                            f"/_sandbox/{self.token(t)}/seed/customer_invoices",
                            json={
                                "count": DOCS_PER_SYNC,
                                "customers": 0,
                                "products": 0,
                                "max_lines": 3,
                                "seed": position,
                            },
                        )
                        for t in chosen
                    ),
                    return_exceptions=True,
                )
            await asyncio.sleep(max(0.0, tick - (time.monotonic() - started)))


@dataclass
class Step:
    tenants: int
    replicas: int
    p50_s: float
    p99_s: float
    max_s: float
    never_synced: int
    runs: int
    failed_runs: int
    cpu_s: float
    rss_mb: float
    sandbox_cpu_share: float
    # The connect surge before the window: p99 start lag of the tenants already synced, and
    # p99 seconds from a new tenant's connect to its first sync.
    surge_p99_s: float = 0.0
    first_sync_wait_p99_s: float = 0.0
    # Each replica's (CPU seconds, runs it started) in the window.
    per_replica: list[tuple[float, int]] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return self.never_synced == 0 and self.runs > 0 and self.p99_s < LAG_TARGET_S

    @property
    def cpu_s_per_1000_per_interval(self) -> float:
        return self.cpu_s / (MEASURE_S / INTERVAL_S) / self.tenants * 1000

    @property
    def cpu_ms_per_sync(self) -> float:
        return 1000 * self.cpu_s / max(self.runs, 1)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _due_after(started: dt.datetime, finished: dt.datetime, outcome: str) -> dt.datetime:
    """The scheduler's next due time after a run (poller.domain.schedule)."""
    if outcome == "failed":
        return finished + dt.timedelta(seconds=min(INTERVAL_S, FAILURE_RETRY_S))
    return max(
        started + dt.timedelta(seconds=INTERVAL_S),
        finished + dt.timedelta(seconds=MIN_SYNC_INTERVAL_S),
    )


def _replica_pid(replica_id: str) -> int:
    """The process id in a replica id (poller.entrypoints.app: host-pid-random)."""
    return int(replica_id.rsplit("-", 2)[-2])


async def _runs_by_replica(
    engine: AsyncEngine, schema: str, start: dt.datetime, end: dt.datetime
) -> dict[int, int]:
    """Runs started in the window, by the process id of the replica that started them."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f'SELECT replica_id, count(*) AS runs FROM "{schema}".sync_runs '
                "WHERE started_at BETWEEN :start AND :end GROUP BY replica_id"
            ),
            {"start": start, "end": end},
        )
        return {_replica_pid(row.replica_id): int(row.runs) for row in rows}


async def _lags(
    engine: AsyncEngine, schema: str, tenants: Tenants, start: dt.datetime, end: dt.datetime
) -> tuple[list[float], int, int, int]:
    """(start lags in the window, tenants never synced, runs started in it, failed ones)."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f'SELECT tenant_id, started_at, finished_at, outcome FROM "{schema}".sync_runs '
                "WHERE started_at >= :since ORDER BY tenant_id, started_at"
            ),
            {"since": start - dt.timedelta(seconds=3 * INTERVAL_S)},
        )
        runs: dict[str, list[tuple[dt.datetime, dt.datetime | None, str | None]]] = defaultdict(
            list
        )
        for row in rows:
            runs[row.tenant_id].append((row.started_at, row.finished_at, row.outcome))
        ever = set(
            (
                await connection.execute(
                    sa.text(f'SELECT DISTINCT tenant_id FROM "{schema}".sync_runs')
                )
            ).scalars()
        )
    lags: list[float] = []
    started_in_window = failed = 0
    for tenant in tenants.ids:
        if tenant not in ever:
            continue
        history = runs.get(tenant, [])
        due: dt.datetime | None = None
        for started, finished, outcome in history:
            if start <= started <= end:
                started_in_window += 1
                failed += outcome == "failed"
                if due is not None:
                    lags.append(max(0.0, (started - due).total_seconds()))
            due = (
                None
                if finished is None or outcome is None
                else _due_after(started, finished, outcome)
            )
        if due is not None and start <= due < end:
            lags.append((end - due).total_seconds())  # due, not started by the window's end
        elif not history:
            lags.append((end - start).total_seconds())  # no run for 3 intervals
    never = sum(1 for tenant in tenants.ids if tenant not in ever)
    for tenant in tenants.ids:
        if tenant not in ever:
            lags.append((end - tenants.connected_at[tenant]).total_seconds())
    return lags, never, started_in_window, failed


async def _dump_runs(
    engine: AsyncEngine,
    schema: str,
    tenants: Tenants,
    window: tuple[dt.datetime, dt.datetime],
    path: Path,
) -> None:
    """Every sync run so far, with its tenant's connect time and the step's window: where a
    tail of start lags comes from is read from these."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f"SELECT tenant_id, replica_id, started_at, finished_at, outcome "
                f'FROM "{schema}".sync_runs ORDER BY tenant_id, started_at'
            )
        )
        with path.open("a", encoding="utf-8") as out:
            for row in rows:
                connected = tenants.connected_at.get(row.tenant_id)
                out.write(
                    f"{len(tenants.ids)},{window[0].isoformat()},{window[1].isoformat()},"
                    f"{row.tenant_id},{row.replica_id},{row.started_at.isoformat()},"
                    f"{row.finished_at.isoformat() if row.finished_at else ''},"
                    f"{row.outcome or ''},{connected.isoformat() if connected else ''}\n"
                )


async def _first_sync_waits(
    engine: AsyncEngine, schema: str, tenants: Tenants, since: dt.datetime
) -> list[float]:
    """Seconds from connect to first sync, for the tenants connected since `since`."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.text(
                f'SELECT tenant_id, min(started_at) AS first FROM "{schema}".sync_runs '
                "GROUP BY tenant_id"
            )
        )
        first = {row.tenant_id: row.first for row in rows}
    return [
        max(0.0, (first[tenant] - connected).total_seconds())
        for tenant, connected in tenants.connected_at.items()
        if connected >= since and tenant in first
    ]


async def _db_now(engine: AsyncEngine) -> dt.datetime:
    async with engine.connect() as connection:
        now: dt.datetime = (
            await connection.execute(sa.text("SELECT clock_timestamp()"))
        ).scalar_one()
        return now


async def _settle(engine: AsyncEngine, schema: str, tenants: Tenants) -> None:
    """Until every tenant had a first sync, or SETTLE_S passed."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        async with engine.connect() as connection:
            synced = (
                await connection.execute(
                    sa.text(f'SELECT count(DISTINCT tenant_id) FROM "{schema}".sync_runs')
                )
            ).scalar_one()
        if synced >= len(tenants.ids):
            return
        await asyncio.sleep(2)


async def _measure(
    engine: AsyncEngine,
    schema: str,
    tenants: Tenants,
    replicas: list[Replica],
    sandbox: psutil.Process,
    surge_start: dt.datetime,
) -> Step:
    await _settle(engine, schema, tenants)
    await asyncio.sleep(INTERVAL_S)
    start = await _db_now(engine)
    surge_lags, _, _, _ = await _lags(engine, schema, tenants, surge_start, start)
    first_waits = await _first_sync_waits(engine, schema, tenants, surge_start)
    cpu0 = [_cpu_s(r.stats) for r in replicas]
    sandbox0 = _cpu_s(sandbox)
    await asyncio.sleep(MEASURE_S)
    end = await _db_now(engine)
    cpus = [_cpu_s(r.stats) - c for r, c in zip(replicas, cpu0, strict=True)]
    cpu = sum(cpus)
    by_replica = await _runs_by_replica(engine, schema, start, end)
    sandbox_share = (_cpu_s(sandbox) - sandbox0) / MEASURE_S
    rss = sum(r.stats.memory_info().rss for r in replicas) / 1e6
    lags, never, runs, failed = await _lags(engine, schema, tenants, start, end)
    if RUNS_CSV:
        await _dump_runs(engine, schema, tenants, (start, end), Path(RUNS_CSV))
    async with engine.connect() as connection:
        active = (
            await connection.execute(
                sa.text(f'SELECT count(*) FROM "{schema}".tenants WHERE active')
            )
        ).scalar_one()
    print(f"# {active} of {len(tenants.ids)} tenants connected in the poller", file=sys.stderr)
    return Step(
        tenants=len(tenants.ids),
        replicas=len(replicas),
        p50_s=_percentile(lags, 0.50),
        p99_s=_percentile(lags, 0.99),
        max_s=max(lags, default=0.0),
        never_synced=never,
        runs=runs,
        failed_runs=failed,
        cpu_s=cpu,
        rss_mb=rss,
        sandbox_cpu_share=sandbox_share,
        surge_p99_s=_percentile(surge_lags, 0.99),
        first_sync_wait_p99_s=_percentile(first_waits, 0.99),
        per_replica=[(c, by_replica.get(r.pid, 0)) for r, c in zip(replicas, cpus, strict=True)],
    )


def _report(step: Step) -> None:
    print(
        f"# {step.replicas} replica(s), {step.tenants} tenants: p50 {step.p50_s:.2f} s, "
        f"p99 {step.p99_s:.2f} s, max {step.max_s:.1f} s, never synced {step.never_synced}, "
        f"runs {step.runs} ({step.failed_runs} failed), poller CPU {step.cpu_s:.1f} s "
        f"({step.cpu_ms_per_sync:.1f} ms/sync), RSS {step.rss_mb:.0f} MB, sandbox "
        f"{100 * step.sandbox_cpu_share:.0f}% of a core -> {'held' if step.held else 'NOT held'}; "
        f"before the window, p99 start lag {step.surge_p99_s:.2f} s while tenants connected, "
        f"p99 connect to first sync {step.first_sync_wait_p99_s:.2f} s",
        file=sys.stderr,
        flush=True,
    )
    if len(step.per_replica) > 1:
        each = ", ".join(
            f"{1000 * cpu / runs:.1f} ms ({runs} runs)" if runs else f"{cpu:.1f} CPU-s, no run"
            for cpu, runs in step.per_replica
        )
        print(f"#   CPU per sync, each replica: {each}", file=sys.stderr, flush=True)


async def _series(
    steps: list[int],
    replicas: list[Replica],
    tenants: Tenants,
    engine: AsyncEngine,
    schema: str,
    sandbox: psutil.Process,
) -> list[Step]:
    results = []
    for target in steps:
        surge_start = await _db_now(engine)
        if target > len(tenants.ids):
            await tenants.add(target - len(tenants.ids))
        step = await _measure(engine, schema, tenants, replicas, sandbox, surge_start)
        _report(step)
        results.append(step)
        if not step.held:
            break
    return results


def _print_figures(suffix: str, steps: list[Step], idle_rss_mb: float) -> None:
    held = [s for s in steps if s.held]
    best = max(held, key=lambda s: s.tenants) if held else None
    measured = best or (steps[-1] if steps else None)
    target = f" (target >= {TARGET_TENANTS})" if not suffix else ""
    print(f"poller.tenants_on_schedule{suffix}: {best.tenants if best else 0} tenants{target}")
    if measured is None:
        return
    first_failed = next((s for s in steps if not s.held), None)
    print(f"poller.p99_start_lag_s{suffix}: {measured.p99_s:.2f} s at {measured.tenants} tenants")
    if first_failed is not None:
        print(
            f"poller.p99_start_lag_s_first_not_held{suffix}: {first_failed.p99_s:.2f} s at "
            f"{first_failed.tenants} tenants"
        )
    print(
        f"poller.p99_start_lag_s_while_connecting{suffix}: {measured.surge_p99_s:.2f} s "
        f"(the tenants already synced, while the step's new ones connected)"
    )
    print(f"poller.first_sync_wait_p99_s{suffix}: {measured.first_sync_wait_p99_s:.2f} s")
    print(
        f"poller.cpu_s_per_1000_tenants_per_interval{suffix}: "
        f"{measured.cpu_s_per_1000_per_interval:.1f} s"
    )
    print(f"poller.cpu_ms_per_sync{suffix}: {measured.cpu_ms_per_sync:.1f} ms")
    per_1000 = (measured.rss_mb - idle_rss_mb) / measured.tenants * 1000
    print(f"poller.rss_mb_per_1000_tenants{suffix}: {per_1000:.1f} MB")
    print(f"poller.rss_mb{suffix}: {measured.rss_mb:.0f} MB at {measured.tenants} tenants")


async def main() -> None:
    database_url = os.environ["DATABASE_URL"]
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    port = free_port()
    sandbox_url = f"http://127.0.0.1:{port}"
    sandbox_process = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
        [sys.executable, "-m", "pennylane_sandbox", "--port", str(port), "--tokens", "bench-idle"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    suffix = uuid.uuid4().hex[:10]
    schema, connections_schema, prefix = f"bench_{suffix}", f"bench_{suffix}_c", f"bench{suffix}."
    env = {
        **os.environ,
        "STOCKPIT_TOPIC_PREFIX": prefix,
        "STOCKPIT_DB_SCHEMA": schema,
        "STOCKPIT_CONNECTIONS_SCHEMA": connections_schema,
        "STOCKPIT_TOKEN_KEY": TokenCipher.generate_key(),
        "STOCKPIT_PENNYLANE_BASE_URL": sandbox_url + "/api/external/v2",
        "STOCKPIT_MAX_CONCURRENT_SYNCS": MAX_CONCURRENT_SYNCS,
        "STOCKPIT_LOG_LEVEL": "WARNING",
    }
    authority = LocalAuthority.create(Path(tempfile.mkdtemp(prefix="bench-auth-")))
    env.update(authority.service_env())
    engine = create_async_engine(database_url)
    replicas: list[Replica] = []
    relay: ManagedProcess | None = None
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, **kafka_options())
    try:
        await wait_ready(sandbox_url + "/_sandbox/health")
        await producer.start()
        replicas.append(await Replica.start(env))
        # The schema's outbox relay beside the replicas, as deployed (one per schema).
        relay = relay_process(
            "poller", env=env, log_dir=Path(tempfile.mkdtemp(prefix="bench-tenants-relay-"))
        )
        await asyncio.to_thread(relay.start)
        await asyncio.sleep(3)
        idle_rss_mb = replicas[0].stats.memory_info().rss / 1e6
        async with (
            httpx.AsyncClient(base_url=sandbox_url, timeout=60) as sandbox,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{replicas[0].port}", timeout=120
            ) as poller,
        ):
            tenants = Tenants(sandbox, producer, prefix, suffix, poller, authority)
            feeder = asyncio.create_task(tenants.feed())
            sandbox_stats = psutil.Process(sandbox_process.pid)
            one = await _series(STEPS, replicas, tenants, engine, schema, sandbox_stats)
            held = [s.tenants for s in one if s.held]
            start_two = max(held, default=min(REPLICA_STEPS, default=0))
            two_steps = [n for n in REPLICA_STEPS if n >= start_two]
            two: list[Step] = []
            if two_steps:
                second = {**env, "PYTHONPATH": PAIR_PYTHONPATH} if PAIR_PYTHONPATH else env
                replicas.append(await Replica.start(second))
                if PAIR_PYTHONPATH:
                    # Its first sync of a tenant sets up that tenant's client: not in the window.
                    await asyncio.sleep(PAIR_WARMUP_INTERVALS * INTERVAL_S)
                two = await _series(two_steps, replicas, tenants, engine, schema, sandbox_stats)
            feeder.cancel()
        print(f"poller.interval_s: {INTERVAL_S} s")
        print(f"poller.idle_rss_mb: {idle_rss_mb:.0f} MB")
        _print_figures("", one, idle_rss_mb)
        if two:
            _print_figures("_2_replicas", two, 2 * idle_rss_mb)
    finally:
        if relay is not None:
            await asyncio.to_thread(relay.stop)
        for replica in replicas:
            replica.stop()
        await producer.stop()
        sandbox_process.send_signal(signal.SIGTERM)
        sandbox_process.wait(timeout=30)
        async with engine.begin() as connection:
            for name in (schema, connections_schema):
                await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
