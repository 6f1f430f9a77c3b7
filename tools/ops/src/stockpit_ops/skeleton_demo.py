"""The walking-skeleton demo: inventory as its own process, fed with Pennylane document events.

Walking-skeleton stage: the inventory service runs as its own process; the demo publishes
Pennylane document events as the poller will, waits for the stock to follow, and prints it.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.table import Table
from stockpit_contracts import new_event, partition_key
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS

from stockpit_ops.processes import service_process

console = Console()

CATALOGUE = {
    101: ("Chaise pliante", "707000"),
    102: ("Table basse", "707000"),
    201: ("Installation sur site", "706000"),
}
INVOICES = [
    (5001, [(101, "4"), (201, "1")]),
    (5002, [(101, "2"), (102, "1")]),
]


def _invoice(pennylane_id: int, lines: list[tuple[int, str]]) -> DocumentVersionRead:
    return DocumentVersionRead(
        kind=DocumentKind.INVOICE,
        pennylane_id=pennylane_id,
        number=f"F-2026-{pennylane_id}",
        draft=False,
        updated_at=datetime.now(UTC),
        lines=tuple(
            DocumentLine(
                pennylane_line_id=pennylane_id * 100 + index,
                label=CATALOGUE[product][0],
                quantity=Decimal(quantity),
                product=ProductRef(
                    pennylane_id=product,
                    label=CATALOGUE[product][0],
                    ledger_account_number=CATALOGUE[product][1],
                ),
            )
            for index, (product, quantity) in enumerate(lines, start=1)
        ),
    )


async def _publish(bootstrap: str, prefix: str, tenant: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for pennylane_id, lines in INVOICES:
            event = new_event(_invoice(pennylane_id, lines), tenant)
            await producer.send_and_wait(
                PENNYLANE_DOCUMENTS.name(prefix),
                value=event.to_json(),
                key=partition_key(tenant),
                headers=[(k, v.encode()) for k, v in event.headers().items()],
            )
            console.print(f"  published invoice F-2026-{pennylane_id}")
    finally:
        await producer.stop()


def main() -> int:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    run = uuid.uuid4().hex[:8]
    prefix, tenant = f"demo{run}.", f"demo-{run}"
    log_dir = Path(tempfile.mkdtemp(prefix="stockpit-demo-"))
    env = {"STOCKPIT_TOPIC_PREFIX": prefix, "STOCKPIT_DB_SCHEMA": f"inventory_demo_{run}"}
    inventory = service_process("inventory", env=env, log_dir=log_dir)
    console.rule("Stockpit Sync demo")
    console.print(f"logs in {log_dir}")
    with console.status("starting the inventory service…"):
        inventory.start()
    try:
        console.print("[green]inventory ready[/green]; publishing Pennylane invoices")
        asyncio.run(_publish(bootstrap, prefix, tenant))
        with console.status("waiting for the stock to follow…"):
            stock = _wait_for_stock(inventory.ready_url.rsplit("/health", 1)[0], tenant)
        table = Table(title="Stock per product and location (real)")
        for column in ("product", "location", "real"):
            table.add_column(column)
        for row in stock:
            table.add_row(row["product_name"], row["location_name"], row["real"])
        console.print(table)
    finally:
        inventory.stop()
    return 0


def _wait_for_stock(base_url: str, tenant: str, timeout_s: float = 60) -> list[dict[str, Any]]:
    import time

    # Keyed by Pennylane product id: inventory gives its products ids of its own.
    expected = {101: "-6", 102: "-1"}
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = httpx.get(f"{base_url}/tenants/{tenant}/stock", timeout=5).json()
        if {
            r["pennylane_product_id"]: str(Decimal(r["real"]).normalize()) for r in rows
        } == expected:
            return rows
        time.sleep(0.3)
    raise TimeoutError(f"stock did not reach {expected}: {rows}")


if __name__ == "__main__":
    sys.exit(main())
