"""Backfill benchmark: 20,000 finalized invoices of 1 to 20 lines, read through the client.

Starts the Pennylane sandbox (uvicorn, loopback, free port) in a subprocess with Pennylane's own
rate limit (25 requests / 5 s per token), seeds it through the admin surface, backfills every
invoice with all of its lines, and prints:
  pennylane.requests_per_invoice       requests the client sent / invoices read (target <= 0.05)
  pennylane.invoices_per_s             measured backfill throughput
  pennylane.rate_bound_invoices_per_s  best the rate limit allows: page size x 25 / 5 s
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
from stockpit_ops.processes import free_port
from stockpit_pennylane.client import MAX_PAGE_SIZE, PENNYLANE_RATE_LIMIT, Filter, PennylaneClient

INVOICES = 20_000
TOKEN = "bench-backfill-token"


def _start_sandbox(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "pennylane_sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--tokens",
        TOKEN,
    ]
    return subprocess.Popen(command)


def _wait_ready(root: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the sandbox exited during start-up")
        try:
            if httpx.get(root + "/_sandbox/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the sandbox did not start within 60 s")


async def _backfill(api_url: str) -> tuple[int, int, int, float]:
    async with PennylaneClient(TOKEN, base_url=api_url) as client:
        started = time.perf_counter()
        invoices = lines = 0
        async for page in client.iter_customer_invoice_pages_with_lines(
            filters=[Filter.eq("draft", False)], sort="id", page_size=MAX_PAGE_SIZE
        ):
            invoices += len(page)
            lines += sum(len(invoice.lines) for invoice in page)
        elapsed = time.perf_counter() - started
        return invoices, lines, client.metrics.requests, elapsed


def main() -> None:
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    process = _start_sandbox(port)
    try:
        _wait_ready(root, process)
        seeded = httpx.post(
            f"{root}/_sandbox/{TOKEN}/seed/customer_invoices",
            json={"count": INVOICES, "min_lines": 1, "max_lines": 20, "seed": 1},
            timeout=600,
        )
        seeded.raise_for_status()
        expected_lines = int(seeded.json()["lines"])
        invoices, lines, requests, elapsed = asyncio.run(_backfill(root + "/api/external/v2"))
        if invoices != INVOICES or lines != expected_lines:
            raise RuntimeError(
                f"backfill incomplete: {invoices}/{INVOICES} invoices, "
                f"{lines}/{expected_lines} lines"
            )
        log = httpx.get(f"{root}/_sandbox/{TOKEN}/requests", timeout=60).json()
        if log["max_received_in_any_window"] > PENNYLANE_RATE_LIMIT.requests:
            raise RuntimeError(f"rate limit exceeded: {log['max_received_in_any_window']}")
    finally:
        process.terminate()
        process.wait(timeout=30)
    rate_bound = MAX_PAGE_SIZE * PENNYLANE_RATE_LIMIT.requests / PENNYLANE_RATE_LIMIT.window_s
    print(f"pennylane.requests_per_invoice: {requests / invoices:.4f} ratio")
    print(f"pennylane.invoices_per_s: {invoices / elapsed:.1f} invoices/s")
    print(f"pennylane.rate_bound_invoices_per_s: {rate_bound:.1f} invoices/s")


if __name__ == "__main__":
    main()
