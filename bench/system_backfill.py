"""A large tenant's first sync: seconds from connecting to the exact stock.

The sandbox company holds BENCH_BACKFILL_INVOICES (100,000) finalized invoices of 1-20 lines on
500 products (about 10 % services, which hold no stock) when the tenant connects with an
explicit `documents_since` before the first of them. Every process is real (sandbox with
Pennylane's 25 requests / 5 s, Kafka, PostgreSQL, the three services as their console
scripts). The figure runs from the connection until the tenant's real stock equals, product by
product, minus the quantities on the company's finalized invoices (the sandbox's per-product
aggregate; services excluded).

What bounds it: invoices come 100 a request (`include=invoice_lines`, 20 lines at most), so
Pennylane's whole budget (5 requests/s) gives 500 invoices/s; the poller takes only its share
of it, the rest is kept for outbound's writes: while a tenant's first sync runs that is
`poller_first_sync_rate_share` (0.9 by default; BENCH_BACKFILL_FIRST_SYNC_SHARE to try another),
after a 15 s hand-over at `poller_rate_share` (0.6; BENCH_BACKFILL_POLLER_RATE_SHARE).

The seeded history is an hour old when the tenant connects (the sandbox's clock is moved
forward after seeding), as a real history is, and still within the changelog's 4 weeks.

Prints:
  system.backfill_100k_s                 connect -> exact stock, scaled to 100,000 invoices
                                         when fewer were run (target <= 300)
  system.backfill_s                      the measured seconds for the invoices run
  system.backfill_pennylane_bound_s      invoices / 500 per s (the whole token's budget)
  system.backfill_poller_share_bound_s   invoices / (500 x the first sync's share)
  system.backfill_pennylane_requests     API requests the poller made (and how many got 429)
  system.backfill_requests_per_10k       requests until the last invoice page per 10,000
                                         invoices, and the changelog reads among them
  system.backfill_poller_read_s          connect -> the first sync's last invoice page, with the
                                         poller's request rate against its share
  system.backfill_after_read_s           last page read -> exact stock (the pipeline behind)
  system.peak_rss_mb.<process>           peak RSS of each service (its children included)
  system.backfill_cpu_s.<process>        CPU seconds of each process during the backfill
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import psutil
from _inventory_stream import cpu_s
from stockpit_connections import FIRST_SYNC_HANDOVER
from stockpit_contracts.payloads.connections import ConnectionSettings
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    http,
    set_sync_interval,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import SERVICES, SystemConfig, running_system
from stockpit_pennylane.client.ratelimit import PENNYLANE_RATE_LIMIT, share_to_requests

TOKEN = "bench-backfill-token"
TENANT = "bench-backfill"
TARGET_INVOICES = 100_000
INVOICES = int(os.environ.get("BENCH_BACKFILL_INVOICES", str(TARGET_INVOICES)))
PRODUCTS = 500
SEED_CHUNK = 2_000  # invoices per seeding request (each well under the admin client's timeout)
INVOICES_PER_REQUEST = 100  # Pennylane's largest list page
PENNYLANE_REQUESTS_PER_S = 25 / 5
SYNC_INTERVAL_S = 5


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _rss(pid: int) -> int:
    total = 0
    for process in _tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def _cpu_s(pid: int) -> float:
    return cpu_s(_tree(pid))


class PeakRss:
    """Samples the RSS of each named process tree twice a second; keeps the peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            for name, pid in self.pids.items():
                try:
                    self.peak[name] = max(self.peak[name], _rss(pid))
                except psutil.NoSuchProcess:
                    continue
            self._done.wait(0.5)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def seed(sandbox: SandboxAdmin, first_day: dt.date) -> None:
    """INVOICES invoices from `first_day` on (50 a day), in chunks; the first chunk creates the
    products and customers, the others use them."""
    for first in range(0, INVOICES, SEED_CHUNK):
        count = min(SEED_CHUNK, INVOICES - first)
        body: dict[str, object] = {
            "count": count,
            "seed": 2026 + first,
            "min_lines": 1,
            "max_lines": 20,
            # Each chunk carries on where the previous one ended (the sandbox spreads a chunk
            # over count / 50 days from its start).
            "start_date": (first_day + dt.timedelta(days=first // 50)).isoformat(),
        }
        if first == 0:
            body |= {"products": PRODUCTS, "customers": 50, "service_share": 0.1}
        else:
            body |= {"products": 0, "customers": 0}
        sandbox.seed_invoices(TOKEN, **body)


def main() -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=os.environ["DATABASE_URL"],
        log_dir=Path(tempfile.mkdtemp(prefix="stockpit-bench-backfill-")),
        tokens=(TOKEN,),
        extra_env={"STOCKPIT_LOG_LEVEL": "WARNING"},
    )
    defaults = ConnectionSettings()
    share = Decimal(
        os.environ.get("BENCH_BACKFILL_POLLER_RATE_SHARE") or defaults.poller_rate_share
    )
    first_sync_share = Decimal(
        os.environ.get("BENCH_BACKFILL_FIRST_SYNC_SHARE") or defaults.poller_first_sync_rate_share
    )
    effective = max(share, first_sync_share)
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        today = dt.datetime.now(dt.UTC).date()
        first_day = today - dt.timedelta(days=max(INVOICES // 50, 1))
        seed(sandbox, first_day)
        expected = sandbox.expected_stock_from_quantities(TOKEN)
        if not expected or not sandbox.service_products(TOKEN):
            raise RuntimeError("the company must sell stocked products and services")
        inventory = Inventory(system, TENANT)
        http("POST", f"{sandbox.url}/clock/advance", {"seconds": 3600})
        http("DELETE", f"{sandbox.url}/{TOKEN}/requests")
        pids = {
            name: process.process.pid
            for name, process in system.services.items()
            if process.process
        }
        assert system.sandbox.process is not None
        pids["pennylane-sandbox"] = system.sandbox.process.pid
        cpu_before = {name: _cpu_s(pid) for name, pid in pids.items()}
        with PeakRss(pids) as rss:
            started, connected_at = time.monotonic(), time.time()
            set_sync_interval(system, TENANT, SYNC_INTERVAL_S)
            settings = {
                "documents_since": (first_day - dt.timedelta(days=7)).isoformat(),
                "poller_rate_share": str(share),
                "poller_first_sync_rate_share": str(first_sync_share),
            }
            http(
                "PUT",
                system.url("poller") + f"/connections/{TENANT}",
                {"pennylane_token": TOKEN, "settings": settings},
            )
            wait_until(
                f"the stock of {INVOICES} invoices",
                lambda: stock_matches(inventory, expected),
                timeout_s=max(1800.0, INVOICES / 20),
            )
            elapsed = time.monotonic() - started
        cpu = {name: _cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
        log = http("GET", f"{sandbox.url}/{TOKEN}/requests")
    requests = log["requests"]
    rate_limited = sum(1 for entry in requests if entry["outcome"] == "rate_limited")
    # The first sync reads every invoice page by page; later syncs read the changelog instead
    # (`/changelogs/customer_invoices`, not an invoice page).
    last_page_at = max(
        entry["at"] for entry in requests if entry["path"].endswith("/v2/customer_invoices")
    )
    read_s = last_page_at - connected_at
    read = [entry for entry in requests if entry["at"] <= last_page_at]
    read_requests = len(read)
    budget = INVOICES_PER_REQUEST * PENNYLANE_REQUESTS_PER_S
    scale = TARGET_INVOICES / INVOICES
    print(
        f"system.backfill_100k_s: {elapsed * scale:.0f} s (target <= 300; "
        + ("measured)" if scale == 1 else f"extrapolated linearly from {INVOICES} invoices)")
    )
    print(f"system.backfill_s: {elapsed:.1f} s for {INVOICES} invoices")
    print(f"system.backfill_invoices_per_s: {INVOICES / elapsed:.0f} invoices/s")
    print(f"system.backfill_pennylane_bound_s: {INVOICES / budget:.0f} s ({budget:.0f} invoices/s)")
    print(
        f"system.backfill_poller_share_bound_s: {INVOICES / (budget * float(effective)):.0f} s "
        f"(effective share {effective:g} while the first sync runs, poller_rate_share {share:g}"
        f" after it: {budget * float(effective):.0f} invoices/s)"
    )
    print(
        f"system.backfill_pennylane_requests: {len(requests)} requests "
        f"({rate_limited} rate-limited, at most {log['max_admitted_in_any_window']} "
        f"admitted in {log['window_seconds']:g} s)"
    )
    # Until the last invoice page: the first sync's reading, without the syncs every
    # SYNC_INTERVAL_S that follow it while the inventory catches up.
    changelog = sum(1 for entry in read if "/changelogs/" in entry["path"])
    per_10k = 10_000 / INVOICES
    print(
        f"system.backfill_requests_per_10k: {read_requests * per_10k:.0f} requests per 10,000 "
        f"invoices until the last invoice page ({changelog} changelog reads in all)"
    )
    # The client paces its share in whole requests per window, plus a safety margin.
    paced = share_to_requests(PENNYLANE_RATE_LIMIT, effective)
    paced_per_s = paced / PENNYLANE_RATE_LIMIT.paced_window_s
    print(
        f"system.backfill_poller_read_s: {read_s:.1f} s (connect -> last invoice page read; "
        f"{read_requests / read_s:.2f} requests/s against a share of "
        f"{PENNYLANE_REQUESTS_PER_S * float(effective):.1f}, paced at {paced} per "
        f"{PENNYLANE_RATE_LIMIT.paced_window_s:g} s = {paced_per_s:.2f}/s after the first "
        f"{FIRST_SYNC_HANDOVER.total_seconds():g} s at {share:g})"
    )
    print(f"system.backfill_after_read_s: {elapsed - read_s:.1f} s (last page read -> stock exact)")
    for name in (*SERVICES, "pennylane-sandbox"):
        print(f"system.peak_rss_mb.{name}: {rss.peak[name] / 2**20:.0f} MB")
    for name in (*SERVICES, "pennylane-sandbox"):
        print(f"system.backfill_cpu_s.{name}: {cpu[name]:.1f} s")


if __name__ == "__main__":
    main()
