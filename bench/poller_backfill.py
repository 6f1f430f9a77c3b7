"""Benchmark: a first-sync backfill of 20,000 invoices (1 to 20 lines) from the sandbox into Kafka.

Starts the Pennylane sandbox in a subprocess and the poller with its outbox relay as subprocesses
(their own schema and topic prefix), connects one tenant, and waits until every invoice is on the
documents topic.
Baseline, measured in the same run: the client alone reading the same invoices with their lines
(`iter_customer_invoice_pages_with_lines`, the cheapest way Pennylane allows), so the ratio shows
what the poller's bookkeeping (snapshots, outbox, watermarks, Kafka) costs on top of the reads.

Prints `name: value unit` lines. Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer
from sqlalchemy.ext.asyncio import create_async_engine
from stockpit_connections import TokenCipher
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_ops.processes import free_port, wait_ready
from stockpit_pennylane.client import PennylaneClient
from stockpit_runtime.auth import LocalAuthority
from stockpit_runtime.kafka_security import kafka_options

INVOICES = int(os.environ.get("BENCH_INVOICES", "20000"))
# The poller's share of the token's budget (the connection's default when unset); a larger one
# shows what the poller's own page loop allows beyond the default share's pacing.
RATE_SHARE = os.environ.get("BENCH_POLLER_RATE_SHARE")
TOKEN = "bench-token-0001"
BASELINE_TOKEN = "bench-token-0002"


async def _seed(sandbox: str, token: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox, timeout=300) as client:
        response = await client.post(
            f"/_sandbox/{token}/seed/customer_invoices",
            json={"count": INVOICES, "min_lines": 1, "max_lines": 20, "seed": 7, "products": 200},
        )
        response.raise_for_status()


async def _baseline(api: str) -> tuple[int, float]:
    """The client alone: every invoice with all its lines. Returns (requests, seconds)."""
    started = time.monotonic()
    read = 0
    share = Decimal(RATE_SHARE or "0.6")
    async with PennylaneClient(BASELINE_TOKEN, base_url=api, budget_share=share) as client:
        async for page in client.iter_customer_invoice_pages_with_lines(sort="id"):
            read += len(page)
        assert read == INVOICES, read
        return client.metrics.requests, time.monotonic() - started


async def _requests_made(sandbox: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=sandbox, timeout=60) as client:
        body = (await client.get(f"/_sandbox/{token}/requests")).json()
    if isinstance(body, dict):
        for key in ("count", "total", "requests"):
            value = body.get(key)
            if isinstance(value, int):
                return value
            if isinstance(value, list):
                return len(value)
    return len(body)


async def _backfill(
    env: dict[str, str], prefix: str, authority: LocalAuthority
) -> tuple[float, float]:
    """Runs the poller until all invoices are on Kafka: (seconds, peak RSS in MB)."""
    topic = PENNYLANE_DOCUMENTS.name(prefix)
    poller = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
        [sys.executable, "-m", "poller.entrypoints.app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Its outbox relay beside it, as deployed: the events reach Kafka through it.
    relay = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
        [sys.executable, "-m", "stockpit_runtime.relay", "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_rss = 0
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        **kafka_options(),
        auto_offset_reset="earliest",
        group_id=None,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{env['STOCKPIT_HTTP_PORT']}/health/ready", 120)
        await consumer.start()
        started = time.monotonic()
        # Connect is HTTP-only: the token never travels on Kafka.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{env['STOCKPIT_HTTP_PORT']}",
            timeout=60,
            headers=authority.headers(),
        ) as http:
            response = await http.put(
                "/connections/bench",
                json={
                    "pennylane_token": TOKEN,
                    # A backfill: the whole (past-dated) seeded history, not from today on.
                    "settings": {
                        "sync_interval_s": 3600,
                        "documents_since": "2000-01-01",
                        **({"poller_rate_share": RATE_SHARE} if RATE_SHARE else {}),
                    },
                },
            )
            response.raise_for_status()
        process = psutil.Process(poller.pid)
        seen = 0
        async with asyncio.timeout(3600):
            while seen < INVOICES:
                batch = await consumer.getmany(timeout_ms=500)
                seen += sum(len(records) for records in batch.values())
                peak_rss = max(peak_rss, process.memory_info().rss)
        elapsed = time.monotonic() - started
    finally:
        await consumer.stop()
        for child in (poller, relay):
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    return elapsed, peak_rss / 1e6


async def main() -> None:
    database_url = os.environ["DATABASE_URL"]
    port = free_port()
    sandbox = f"http://127.0.0.1:{port}"
    api = sandbox + "/api/external/v2"
    sandbox_process = subprocess.Popen(  # noqa: ASYNC220 (started once, not awaited on)
        [
            sys.executable,
            "-m",
            "pennylane_sandbox",
            "--port",
            str(port),
            "--tokens",
            f"{TOKEN},{BASELINE_TOKEN}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    suffix = uuid.uuid4().hex[:10]
    schema, connections_schema, prefix = f"bench_{suffix}", f"bench_{suffix}_c", f"bench{suffix}."
    try:
        await wait_ready(sandbox + "/_sandbox/health")
        await _seed(sandbox, TOKEN)
        await _seed(sandbox, BASELINE_TOKEN)
        baseline_requests, baseline_s = await _baseline(api)
        authority = LocalAuthority.create(Path(tempfile.mkdtemp(prefix="bench-auth-")))
        env = {
            **os.environ,
            "STOCKPIT_TOPIC_PREFIX": prefix,
            "STOCKPIT_DB_SCHEMA": schema,
            "STOCKPIT_CONNECTIONS_SCHEMA": connections_schema,
            "STOCKPIT_TOKEN_KEY": TokenCipher.generate_key(),
            "STOCKPIT_PENNYLANE_BASE_URL": api,
            "STOCKPIT_HTTP_PORT": str(free_port()),
            "STOCKPIT_LOG_LEVEL": "WARNING",
            **authority.service_env(),
        }
        with tempfile.TemporaryDirectory():
            elapsed, peak_mb = await _backfill(env, prefix, authority)
        requests = await _requests_made(sandbox, TOKEN)
        print(f"poller.invoices: {INVOICES} invoices")
        print(f"poller.requests_per_invoice: {requests / INVOICES:.4f} ratio")
        print(f"poller.invoices_per_s: {INVOICES / elapsed:.1f} invoices/s")
        print(f"poller.peak_rss_mb: {peak_mb:.1f} MB")
        print(f"baseline.client_requests_per_invoice: {baseline_requests / INVOICES:.4f} ratio")
        print(f"baseline.client_invoices_per_s: {INVOICES / baseline_s:.1f} invoices/s")
        print(f"poller.requests_vs_client: {requests / baseline_requests:.3f} ratio")
        print(f"poller.speed_vs_client: {baseline_s / elapsed:.3f} ratio")
    finally:
        sandbox_process.send_signal(signal.SIGTERM)
        sandbox_process.wait(timeout=30)
        engine = create_async_engine(database_url)
        async with engine.begin() as connection:
            for name in (schema, connections_schema):
                await connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
