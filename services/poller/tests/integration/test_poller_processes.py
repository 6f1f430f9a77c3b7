"""The poller as real processes: SIGKILL mid-sync, restart, and a replica taking over another's
tenants. Tenants connect over HTTP (connect is HTTP-only); disconnects arrive over Kafka."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pennylane_sandbox import SandboxConfig
from pennylane_sandbox import create_app as sandbox_app
from pennylane_sandbox.serving import serve_in_loop
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_connections import TokenCipher
from stockpit_contracts import Payload, new_event, parse_event, partition_key
from stockpit_contracts.payloads.connections import DisconnectTenant
from stockpit_contracts.payloads.documents import DocumentVersionRead
from stockpit_contracts.payloads.inventory import TenantSettingsChanged
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_ops.processes import ManagedProcess, relay_process
from stockpit_runtime.kafka_security import kafka_options
from stockpit_testing.fixtures import drop_schemas, operator_headers

pytestmark = pytest.mark.integration

TOKENS = ["proc-token-aaaa", "proc-token-bbbb", "proc-token-cccc"]
KEY = TokenCipher.generate_key()


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_in_loop(sandbox_app(SandboxConfig(tokens=TOKENS))) as url:
        yield url


@pytest.fixture
async def connections_schema(database_url: str, db_schema: str) -> AsyncIterator[str]:
    name = f"{db_schema}_c"
    yield name
    await drop_schemas(database_url, name)


class Replicas:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self._log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        # The schema's outbox relay, as deployed beside the replicas: it outlives their kills.
        self.relay: ManagedProcess | None = None

    def start(self, name: str) -> None:
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        free = port.getsockname()[1]
        port.close()
        self.ports[name] = free
        env = {**self.env, "STOCKPIT_REPLICA_ID": name, "STOCKPIT_HTTP_PORT": str(free)}
        log = (self._log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "poller.entrypoints.app"], env=env, stdout=log, stderr=log
        )
        if self.relay is None:
            # Launched without waiting: it publishes once the first replica has migrated.
            self.relay = relay_process("poller", env=self.env, log_dir=self._log_dir)
            self.relay.launch()

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
        if self.relay is not None:
            self.relay.stop()


@pytest.fixture
def replicas(
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    connections_schema: str,
    sandbox_url: str,
    tmp_path: Path,
) -> Iterator[Replicas]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": topic_prefix,
        "STOCKPIT_DB_SCHEMA": db_schema,
        "STOCKPIT_CONNECTIONS_SCHEMA": connections_schema,
        "STOCKPIT_TOKEN_KEY": KEY,
        "STOCKPIT_PENNYLANE_BASE_URL": sandbox_url + "/api/external/v2",
        "STOCKPIT_LEASE_TTL_S": "3",
        "STOCKPIT_SCHEDULER_TICK_S": "0.2",
        "STOCKPIT_PAGE_SIZE": "10",
        "STOCKPIT_LOG_LEVEL": "WARNING",
    }
    group = Replicas(env, tmp_path)
    yield group
    group.stop_all()


async def _seed(sandbox_url: str, token: str, count: int, seed: int) -> set[int]:
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        response = await client.post(
            f"/_sandbox/{token}/seed/customer_invoices",
            json={"count": count, "seed": seed, "max_lines": 5},
        )
        body = response.json()
    return set(range(body["first_id"], body["last_id"] + 1))


async def _send_command(bootstrap: str, prefix: str, tenant: str, command: Payload) -> None:
    topic = command.TOPIC.name(prefix)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **kafka_options(), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            value=new_event(command, tenant).to_json(),
            key=partition_key(tenant),
        )
    finally:
        await producer.stop()


async def _connect(
    replicas: Replicas, tenant: str, token: str, share: str, interval_s: int = 3600
) -> None:
    """The interval is Stockpit's setting, sent as inventory would send it; then PUT
    /connections/{tenant} (connect is HTTP-only) on a running replica, once it is ready."""
    env = replicas.env
    interval = TenantSettingsChanged(sync_interval_s=interval_s)
    await _send_command(
        env["KAFKA_BOOTSTRAP_SERVERS"], env["STOCKPIT_TOPIC_PREFIX"], tenant, interval
    )
    name = sorted(replicas.processes)[0]
    base_url = f"http://127.0.0.1:{replicas.ports[name]}"
    # documents_since: the sandbox dates its seeded invoices in the past; all of them count.
    settings = {"poller_rate_share": share, "documents_since": "2000-01-01"}
    body = {"pennylane_token": token, "settings": settings}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client, asyncio.timeout(120):
        while True:
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.3)
        response = await client.put(f"/connections/{tenant}", json=body, headers=operator_headers())
        assert response.status_code == 200, response.text


class DocumentReader:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            **kafka_options(),
            auto_offset_reset="earliest",
            group_id=None,
        )
        self.seen: dict[str, set[int]] = {}
        self.count = 0

    async def __aenter__(self) -> DocumentReader:
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def until(self, done: Any, timeout_s: float = 240) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                while not done(self):
                    batch = await self._consumer.getmany(timeout_ms=300)
                    for records in batch.values():
                        for record in records:
                            event = parse_event(record.value)
                            if isinstance(event.payload, DocumentVersionRead):
                                self.seen.setdefault(event.tenant_id, set()).add(
                                    event.payload.pennylane_id
                                )
                                self.count += 1
        except TimeoutError:
            pass


async def test_sigkill_mid_sync_then_restart_publishes_everything(
    replicas: Replicas,
    sandbox_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
) -> None:
    ids = await _seed(sandbox_url, TOKENS[0], 200, seed=11)
    replicas.start("first")
    topic = PENNYLANE_DOCUMENTS.name(topic_prefix)
    async with DocumentReader(kafka_bootstrap_servers, topic) as reader:
        # A small rate share makes the first sync slow enough to be killed in the middle.
        await _connect(replicas, "tenant-a", TOKENS[0], "0.2")
        await reader.until(lambda r: r.count >= 40)
        assert reader.count >= 40
        replicas.kill("first")
        partial = set(reader.seen.get("tenant-a", set()))
        assert partial < ids, "killed mid-sync"
        replicas.start("second")
        await reader.until(lambda r: ids <= r.seen.get("tenant-a", set()))
        missing = ids - reader.seen.get("tenant-a", set())
        assert not missing, f"{len(missing)} invoices never published"


async def test_a_replica_takes_over_the_tenants_of_a_killed_one(
    replicas: Replicas,
    sandbox_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    database_url: str,
    db_schema: str,
) -> None:
    wanted = {
        f"tenant-{n}": await _seed(sandbox_url, token, 150, seed=n)
        for n, token in enumerate(TOKENS)
    }
    replicas.start("a")
    replicas.start("b")
    topic = PENNYLANE_DOCUMENTS.name(topic_prefix)
    async with DocumentReader(kafka_bootstrap_servers, topic) as reader:
        for n, token in enumerate(TOKENS):
            await _connect(replicas, f"tenant-{n}", token, "0.2")
        await reader.until(lambda r: r.count >= 30)
        engine = create_async_engine(database_url)
        async with engine.connect() as db:
            owners = {
                row.lease_owner
                for row in await db.execute(
                    sa.text(f'SELECT lease_owner FROM "{db_schema}".tenants')
                )
                if row.lease_owner
            }
        await engine.dispose()
        assert owners, "some tenant is being synced"
        victim = sorted(owners)[0]
        replicas.kill(victim)
        await reader.until(
            lambda r: all(ids <= r.seen.get(tenant, set()) for tenant, ids in wanted.items())
        )
        for tenant, ids in wanted.items():
            assert ids <= reader.seen.get(tenant, set()), tenant


async def _wait_for(condition: Any, timeout_s: float = 240) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            while not await condition():
                await asyncio.sleep(0.5)
    except TimeoutError:
        return False
    return True


async def test_two_replicas_never_sync_one_tenant_at_the_same_time(
    replicas: Replicas,
    sandbox_url: str,
    kafka_bootstrap_servers: str,
    topic_prefix: str,
    database_url: str,
    db_schema: str,
) -> None:
    """Two replica processes, three tenants synced every 5 s: each replica's sync runs (from the
    claim to the end of the last read, on the database clock) never overlap for one tenant."""
    for n, token in enumerate(TOKENS):
        await _seed(sandbox_url, token, 60, seed=20 + n)
    replicas.start("a")
    replicas.start("b")
    for n, token in enumerate(TOKENS):
        await _connect(replicas, f"tenant-{n}", token, "0.5", interval_s=5)
    engine = create_async_engine(database_url)
    runs_table = f'"{db_schema}".sync_runs'

    async def runs() -> list[Any]:
        try:
            async with engine.connect() as db:
                result = await db.execute(
                    sa.text(
                        f"SELECT tenant_id, replica_id, started_at, finished_at FROM {runs_table}"
                        " ORDER BY tenant_id, started_at"
                    )
                )
                return list(result)
        except sa.exc.ProgrammingError:
            return []  # no replica has created its tables yet

    async def enough() -> bool:
        finished = [run for run in await runs() if run.finished_at is not None]
        per_tenant = {f"tenant-{n}": 0 for n in range(len(TOKENS))}
        for run in finished:
            per_tenant[run.tenant_id] += 1
        return min(per_tenant.values()) >= 5 and {r.replica_id for r in finished} == {"a", "b"}

    try:
        assert await _wait_for(enough), "each tenant synced 5 times, by both replicas"
        for n in range(len(TOKENS)):
            await _send_command(
                kafka_bootstrap_servers, topic_prefix, f"tenant-{n}", DisconnectTenant()
            )

        async def all_finished() -> bool:
            return all(run.finished_at is not None for run in await runs())

        assert await _wait_for(all_finished), "every run ends once its tenant is disconnected"
        history = await runs()
    finally:
        await engine.dispose()
    overlaps = [
        (before, after)
        for before, after in itertools.pairwise(history)
        if before.tenant_id == after.tenant_id and after.started_at < before.finished_at
    ]
    assert not overlaps, overlaps[:3]
    handovers = sum(
        1
        for before, after in itertools.pairwise(history)
        if before.tenant_id == after.tenant_id and before.replica_id != after.replica_id
    )
    assert handovers > 0, "the replicas took turns on some tenant"
    assert len(history) >= 15
