"""Benchmark: what following purchase orders of any age (rule 14) costs in Pennylane requests.

A tenant with 10,000 purchase orders, all published, synced at the default interval (30 min).
Every sync re-lists the newest ones (`SyncLimits.purchase_order_window`) and re-reads its share
of the older ones by id, as planned by the poller's own code (`poller.domain.recheck`), with
the very requests `TenantSync` makes, against the Pennylane sandbox (in process). The syncs'
clock is simulated: the run covers BENCH_PO_RECHECK_HOURS (6 by default) of syncs in seconds,
and the requests counted are scaled to a day (the pacing is linear in time).

Prints `name: value unit` lines. Needs nothing but the sandbox.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from decimal import Decimal

import httpx
from pennylane_sandbox import SandboxConfig
from pennylane_sandbox import create_app as sandbox_app
from poller.domain.mapping import PURCHASE_ORDER_TYPE
from poller.domain.recheck import RecheckCursor, cursor_after, plan_recheck
from poller.service_layer.sync import SyncLimits
from stockpit_contracts.payloads.connections import DEFAULT_SYNC_INTERVAL_S
from stockpit_pennylane.client import Filter, PennylaneClient

PURCHASE_ORDERS = int(os.environ.get("BENCH_PURCHASE_ORDERS", "10000"))
HOURS = float(os.environ.get("BENCH_PO_RECHECK_HOURS", "6"))
TOKEN = "bench-po-token-01"
API = "http://sandbox/api/external/v2"


async def _seed(admin: httpx.AsyncClient) -> list[int]:
    seed = {"count": 1, "customers": 1, "products": 1}
    await admin.post(f"/_sandbox/{TOKEN}/seed/customer_invoices", json=seed)
    customer = (await admin.get(f"/_sandbox/{TOKEN}/records/customers")).json()["items"][0]["id"]
    product = (await admin.get(f"/_sandbox/{TOKEN}/records/products")).json()["items"][0]["id"]
    body = {"customer_id": customer, "invoice_lines": [{"product_id": product, "quantity": 1}]}
    ids = []
    for _ in range(PURCHASE_ORDERS):
        response = await admin.post(f"/_sandbox/{TOKEN}/commercial_documents", json=body)
        response.raise_for_status()
        ids.append(int(response.json()["id"]))
    return ids


async def main() -> None:
    app = sandbox_app(SandboxConfig(tokens=[TOKEN]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as admin:
        published = sorted(await _seed(admin), reverse=True)
    limits = SyncLimits()
    interval = dt.timedelta(seconds=DEFAULT_SYNC_INTERVAL_S)
    type_filter = Filter.eq("document_type", PURCHASE_ORDER_TYPE)
    window_requests = recheck_requests = syncs = 0
    cursor = RecheckCursor()
    start = now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    async with PennylaneClient(
        TOKEN, base_url=API, budget_share=Decimal(1), transport=transport
    ) as client:
        while now < start + dt.timedelta(hours=HOURS):
            # The newest ones, as `TenantSync._rescan_purchase_orders` lists them.
            before = client.metrics.requests
            listed = 0
            async for _ in client.iter_commercial_documents(
                filters=[type_filter],
                sort="-id",
                page_size=min(limits.purchase_order_window, 100),
            ):
                listed += 1
                if listed >= limits.purchase_order_window:
                    break
            window_requests += client.metrics.requests - before
            # The older ones, as `TenantSync._recheck_purchase_orders` re-reads them.
            plan = plan_recheck(cursor, len(published), now, interval, limits.page_size)
            below = [i for i in published if plan.below_id is None or i < plan.below_id]
            taken = below[: plan.quota]
            before = client.metrics.requests
            for first in range(0, len(taken), limits.page_size):
                chunk = taken[first : first + limits.page_size]
                found = [
                    d.id
                    async for d in client.iter_commercial_documents(
                        filters=[type_filter, Filter.in_("id", chunk)], page_size=limits.page_size
                    )
                ]
                assert sorted(found) == sorted(chunk), "every published one is found again"
            recheck_requests += client.metrics.requests - before
            cursor = cursor_after(plan, taken)
            syncs += 1
            now += interval
    per_day = 24 / HOURS
    total = (window_requests + recheck_requests) * per_day
    print(f"poller.po_recheck_purchase_orders: {PURCHASE_ORDERS} purchase orders")
    print(f"poller.po_recheck_syncs_per_day: {syncs * per_day:.0f} syncs")
    print(f"poller.po_recheck_requests_per_day: {total:.0f} requests")
    print(f"poller.po_recheck_window_requests_per_day: {window_requests * per_day:.0f} requests")
    print(f"poller.po_recheck_old_requests_per_day: {recheck_requests * per_day:.0f} requests")
    budget = 25 / 5 * 86_400 * 0.6
    print(f"poller.po_recheck_share_of_budget: {total / budget:.5f} ratio")


if __name__ == "__main__":
    asyncio.run(main())
