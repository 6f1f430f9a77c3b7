"""The whole system's latency and throughput, every process real (sandbox, Kafka, PostgreSQL,
the three services as their console scripts).

Latency: with a 5 s sync interval, invoices are finalized in the sandbox one at a time, one
per second, each on a product of its own; a watcher polls the inventory's stock API and notes
when each product's stock first shows the sale. The sync interval is the baseline: a document
finalized just after a sync waits up to one interval, so p99 / interval shows the pipeline's
own overhead (target p99 ≤ 7 s).

Throughput, and the soak: the company holds 10,000 finalized invoices (some lines on services)
when the tenant connects; the time from connecting (the first sync) to the last stock change,
once the stock equals exactly the sum of the invoices' lines for non-service products, gives
documents per second for the whole pipeline. The same soak, with its exact ledger checked too,
is the end-to-end test tests/test_e2e_soak.py (`stockpit_ops.soak` holds what both share).

Prints `name: value unit` lines. Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (make bench).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from stockpit_ops.pennylane_seed import PennylaneUser
from stockpit_ops.probes import Inventory, SandboxAdmin
from stockpit_ops.soak import SOAK_DOCUMENTS, connect_and_wait_for_stock, seed_soak
from stockpit_ops.system import SystemConfig, running_system

TOKEN = "bench-company-token"
TENANT = "bench"
SYNC_INTERVAL_S = 5
LATENCY_DOCUMENTS = 40
PACE_S = 1.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure_latency(user: PennylaneUser, inventory: Inventory, products: list[int]) -> list[float]:
    """Finalize one invoice per product at a steady pace; return finalization → stock seconds."""
    customer = user.call(
        "POST",
        "/company_customers",
        {
            "name": "Client du banc",
            "billing_address": {
                "address": "1 rue du Banc",
                "postal_code": "69001",
                "city": "Lyon",
                "country_alpha2": "FR",
            },
        },
    )["id"]
    finalized_at: dict[int, float] = {}
    visible_at: dict[int, float] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            stock = inventory.real_stock()
            seen = time.monotonic()
            for product in list(finalized_at):
                if product not in visible_at and stock.get(product) == Decimal(-1):
                    visible_at[product] = seen
            if len(visible_at) == len(products):
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    for product in products:
        started = time.monotonic()
        user.call(
            "POST",
            "/customer_invoices",
            {
                "customer_id": customer,
                "date": today,
                "deadline": today,
                "draft": False,
                "invoice_lines": [{"product_id": product, "quantity": 1.0}],
            },
        )
        finalized_at[product] = time.monotonic()
        time.sleep(max(0.0, PACE_S - (time.monotonic() - started)))
    watcher.join(timeout=120)
    done.set()
    missing = set(products) - set(visible_at)
    if missing:
        raise RuntimeError(f"{len(missing)} documents never reached the stock")
    return [visible_at[p] - finalized_at[p] for p in products]


def measure_soak(sandbox: SandboxAdmin, inventory: Inventory) -> float:
    """Connect the tenant to a company holding SOAK_DOCUMENTS invoices; return documents per
    second from the connection (its first sync) to the last stock change, once the stock
    equals exactly what the invoices imply."""
    elapsed = connect_and_wait_for_stock(
        inventory.system,
        inventory,
        TOKEN,
        sandbox.expected_stock(TOKEN),
        sync_interval_s=SYNC_INTERVAL_S,
    )
    services = sandbox.service_products(TOKEN)
    if not services or services & set(inventory.real_stock()):
        raise RuntimeError("services must be seeded and must hold no stock")
    return SOAK_DOCUMENTS / elapsed


def main() -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=os.environ["DATABASE_URL"],
        log_dir=Path(tempfile.mkdtemp(prefix="stockpit-bench-")),
        tokens=(TOKEN,),
        extra_env={"STOCKPIT_LOG_LEVEL": "WARNING"},
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        # The soak's invoices (dated over the last months, some lines on services), then
        # products of their own for the latency documents (none of them a service).
        seed_soak(sandbox, TOKEN)
        soak_products = {p["id"] for p in sandbox.records(TOKEN, "products")}
        sandbox.seed_invoices(TOKEN, count=0, products=LATENCY_DOCUMENTS, service_share=0)
        products = sorted({p["id"] for p in sandbox.records(TOKEN, "products")} - soak_products)
        inventory = Inventory(system, TENANT)
        documents_per_s = measure_soak(sandbox, inventory)
        user = PennylaneUser(system.sandbox_url, TOKEN)
        try:
            latencies = measure_latency(user, inventory, products)
        finally:
            user.close()
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"system.latency_p50_s: {p50:.2f} s")
    print(f"system.latency_p99_s: {p99:.2f} s")
    print(f"system.latency_max_s: {max(latencies):.2f} s")
    print(f"system.latency_mean_s: {statistics.fmean(latencies):.2f} s")
    print(f"system.sync_interval_s: {SYNC_INTERVAL_S} s")
    print(f"system.latency_p99_over_interval: {p99 / SYNC_INTERVAL_S:.2f} ratio")
    print(f"system.documents_per_s: {documents_per_s:.1f} documents/s")
    print(f"system.soak_documents: {SOAK_DOCUMENTS} documents (stock exact)")


if __name__ == "__main__":
    main()
