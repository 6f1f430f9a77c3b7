"""A few hundred writes through the `stockpit-outbound` process while Pennylane misbehaves and the
process is killed with SIGKILL at random points: every change lands exactly once, nothing is lost,
and the token's rate limit is never exceeded (all judged from the sandbox's own records and log).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from outbound.domain.references import external_reference
from outbound.domain.vat import invoice_amounts
from pennylane_sandbox import FaultSettings
from stockpit_contracts import Envelope, Payload, new_event, parse_event
from stockpit_contracts.payloads.catalog import PostalAddress
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    PennylaneIdAssigned,
    ProductChangeRequested,
    ReceiptLine,
    ReceiptSendRequested,
)
from stockpit_contracts.topics import OUTBOUND_RESULTS
from stockpit_runtime.relay import running_relay
from stockpit_runtime.settings import ServiceSettings
from stockpit_testing.fixtures import operator_headers, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TENANTS = ("chaos-a", "chaos-b")
PRODUCTS_PER_TENANT = 15
CHANGES_PER_PRODUCT = 2
CUSTOMERS_PER_TENANT = 40
RECEIPTS_PER_TENANT = 30
SUPPLIERS = ("Quincaillerie Dupré", "Bois & Fils", "Outillage Martin", "Visserie du Nord")
KILLS = 6
VAT_CODES = ("FR_200", "FR_100", "FR_55", "FR_21")
# About 20 % of calls fail: 429, 500, 503, dropped connections, and responses slower than the
# client's timeout (those requests are still applied by the sandbox: ambiguous writes).
FAULTS = FaultSettings(
    rate_429=0.05, rate_500=0.04, rate_503=0.04, rate_drop=0.03, rate_delay=0.04, delay_seconds=2.0
)
CLIENT_TIMEOUT_S = 1.0
PARIS = PostalAddress(address="1 rue X", postal_code="75001", city="Paris", country_alpha2="FR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def receipt_lines(rng: random.Random) -> tuple[ReceiptLine, ...]:
    return tuple(
        ReceiptLine(
            label=f"Article {n}",
            quantity=Decimal(rng.randint(1, 40)),
            unit_price_before_tax=Decimal(rng.randint(1, 50000)) / 1000,
            vat_rate=rng.choice(VAT_CODES),
        )
        for n in range(rng.randint(1, 6))
    )


def intended_changes(
    tenant: str, product_ids: list[int], rng: random.Random, now: dt.datetime
) -> list[Envelope[Payload]]:
    events: list[Envelope[Payload]] = []
    for round_ in range(1, CHANGES_PER_PRODUCT + 1):
        for n, pennylane_id in enumerate(product_ids):
            change = ProductChangeRequested(
                product_id=f"p{n}",
                pennylane_product_id=pennylane_id,
                label=f"Produit {n} v{round_}",
                reference=f"SKU-{n}-{round_}",
                changed_at=now,
            )
            events.append(new_event(change, tenant))
    for n in range(CUSTOMERS_PER_TENANT):
        individual = n % 3 == 0
        customer = CustomerWriteRequested(
            customer_id=f"c{n}",
            kind="individual" if individual else "company",
            name=f"Prénom{n} Nom{n}" if individual else f"Société {n}",
            emails=(f"client{n}@example.org",),
            billing_address=PARIS,
            changed_at=now,
        )
        events.append(new_event(customer, tenant))
    for n in range(RECEIPTS_PER_TENANT):
        receipt = ReceiptSendRequested(
            receipt_id=f"r{n}",
            purchase_id=f"po{n}",
            supplier_name=SUPPLIERS[n % len(SUPPLIERS)],
            received_on=dt.date(2026, 3, 1) + dt.timedelta(days=n),
            lines=receipt_lines(rng),
        )
        events.append(new_event(receipt, tenant))
    rng.shuffle(events)  # interleave kinds; per-record order is kept by the keys
    return sorted(events, key=lambda e: _is_second_change(e))


def _is_second_change(event: Envelope[Payload]) -> bool:
    payload = event.payload
    return isinstance(payload, ProductChangeRequested) and payload.label.endswith(
        f"v{CHANGES_PER_PRODUCT}"
    )


class OutboundProcess:
    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        executable = Path(sys.executable).parent / "stockpit-outbound"
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(executable), env=self.env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )
        self.starts += 1

    async def wait_ready(self, kit: Any) -> None:
        async def ready() -> bool:
            assert self.process is not None
            assert self.process.returncode is None, self.log_path.read_text()[-3000:]
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(self.url("/health/ready"), timeout=2)
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        await kit.wait_until(ready, timeout_s=120)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                await self.kill()

    async def get(self, path: str, **params: Any) -> Any:
        """A list read whole, page after page (`Link: rel="next"`)."""
        rows: list[Any] = []
        async with httpx.AsyncClient(headers=operator_headers(), timeout=10) as client:
            response = await client.get(self.url(path), params=params)
            response.raise_for_status()
            rows += response.json()
            while "next" in response.links:
                response = await client.get(self.url(response.links["next"]["url"]))
                response.raise_for_status()
                rows += response.json()
        return rows


async def test_hundreds_of_writes_survive_faults_and_sigkill_exactly_once(
    sandbox_for: Any,
    kit: Any,
    kafka_bootstrap_servers: str,
    database_url: str,
    topic_prefix: str,
    db_schema: str,
    tmp_path: Path,
) -> None:
    rng = random.Random(20261128)
    sandbox = sandbox_for(list(TENANTS))
    product_ids = {
        tenant: [
            sandbox.create_product(tenant, f"Produit {n}", f"SKU-{n}-0")
            for n in range(PRODUCTS_PER_TENANT)
        ]
        for tenant in TENANTS
    }
    # The Stockpit changes come after the products exist: an older change would lose to
    # Pennylane's creation (last change wins) and rightly not be written.
    now = dt.datetime.now(dt.UTC)
    events = {tenant: intended_changes(tenant, product_ids[tenant], rng, now) for tenant in TENANTS}
    total = sum(len(e) for e in events.values())
    sandbox.set_faults(FAULTS, seed=11)

    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap_servers,
        "DATABASE_URL": database_url,
        "STOCKPIT_TOPIC_PREFIX": topic_prefix,
        "STOCKPIT_DB_SCHEMA": db_schema,
        "STOCKPIT_HTTP_PORT": str(port),
        "STOCKPIT_LOG_LEVEL": "WARNING",
        "STOCKPIT_PENNYLANE_BASE_URL": sandbox.api_url,
        "STOCKPIT_PENNYLANE_TOKENS": json.dumps(sandbox.tokens),
        "STOCKPIT_PENNYLANE_TIMEOUT_S": str(CLIENT_TIMEOUT_S),
        # No poller in this test: outbound may use 90 % of each token's budget.
        "STOCKPIT_POLLER_BUDGET_SHARE": "0.1",
        "STOCKPIT_WRITE_RETRY_BASE_S": "0.5",
        "STOCKPIT_WRITE_RETRY_MAX_S": "5",
        # Longer than the sandbox's slow answers: a timed-out write has landed before the lookup.
        "STOCKPIT_AMBIGUOUS_SETTLE_S": "3",
        "STOCKPIT_WRITE_MAX_ATTEMPTS": "16",
    }
    outbound = OutboundProcess(env, port, tmp_path / "outbound.log")
    # Its outbox relay beside it (here in the test's process), as deployed: it publishes the
    # write results, and is not killed with the service.
    relay = contextlib.AsyncExitStack()
    try:
        await outbound.start()
        await outbound.wait_ready(kit)
        await relay.enter_async_context(
            running_relay(
                ServiceSettings(
                    kafka_bootstrap_servers=kafka_bootstrap_servers,
                    database_url=database_url,
                    db_schema=db_schema,
                )
            )
        )
        await kit.publish(
            kafka_bootstrap_servers, topic_prefix, [e for t in TENANTS for e in events[t]]
        )
        done_at_kill: list[int] = []
        for _ in range(KILLS):
            # Kill while writes are going out: once this process has finished one more write,
            # at a random moment within the next few seconds.
            before = await done_count(outbound)
            await kit.wait_until(
                lambda before=before: _grew(outbound, before), timeout_s=300, interval_s=0.2
            )
            await asyncio.sleep(rng.uniform(0.0, 4.0))
            done_at_kill.append(await done_count(outbound))
            await outbound.kill()
            await outbound.start()
            await outbound.wait_ready(kit)

        async def all_done() -> bool:
            pending = await outbound.get("/outbound/writes", status="pending", limit=500)
            done = await outbound.get("/outbound/writes", status="done", limit=500)
            return not pending and len(done) == total

        await kit.wait_until(all_done, timeout_s=600, interval_s=1)
        failed = await outbound.get("/outbound/writes", status="failed", limit=500)
        letters = await outbound.get("/outbound/dead-letters", include_replayed=True)
        done_rows = await outbound.get("/outbound/writes", status="done", limit=500)
        records = await read_topic(
            kafka_bootstrap_servers, OUTBOUND_RESULTS.name(topic_prefix), expect=total, timeout_s=60
        )
    finally:
        await relay.aclose()
        await outbound.stop()

    print(f"writes: {total}, kills: {KILLS} (done when killed: {done_at_kill})")
    print(f"faults injected: {sandbox.admin('GET', '/faults')['injected']}")
    assert failed == []
    assert letters == []
    assert len(done_rows) == total
    assert done_at_kill[-1] < total, "the kills all came after the work was done"
    assert done_at_kill == sorted(set(done_at_kill)), "every kill interrupted ongoing work"
    attempts = Counter(row["attempts"] for row in done_rows)
    print(f"attempts per write: {sorted(attempts.items())}")

    for tenant in TENANTS:
        check_tenant(sandbox, tenant, events[tenant], product_ids[tenant])

    assigned: set[tuple[str, str, str]] = set()
    for record in records:
        event = parse_event(record.value)
        assert isinstance(event.payload, PennylaneIdAssigned)
        assigned.add((event.tenant_id, event.payload.entity_kind, event.payload.entity_id))
    expected_records = {
        (tenant, *record_of(e.payload)) for tenant in TENANTS for e in events[tenant]
    }
    assert assigned == expected_records


async def done_count(outbound: OutboundProcess) -> int:
    return len(await outbound.get("/outbound/writes", status="done", limit=500))


async def _grew(outbound: OutboundProcess, before: int) -> bool:
    return await done_count(outbound) > before


def record_of(payload: Payload) -> tuple[str, str]:
    if isinstance(payload, ProductChangeRequested):
        return "product", payload.product_id
    if isinstance(payload, CustomerWriteRequested):
        return "customer", payload.customer_id
    assert isinstance(payload, ReceiptSendRequested)
    return "receipt", payload.receipt_id


def check_tenant(
    sandbox: Any, tenant: str, events: list[Envelope[Payload]], product_ids: list[int]
) -> None:
    payloads = [e.payload for e in events]
    # Exactly one customer per customer created in Stockpit.
    customers = sandbox.records(tenant, "customers")
    wanted = {
        external_reference(tenant, "customer", p.customer_id)
        for p in payloads
        if isinstance(p, CustomerWriteRequested)
    }
    references = Counter(c["external_reference"] for c in customers)
    assert set(references) == wanted
    assert max(references.values()) == 1

    # Exactly one update per intended product change, and the last one wins.
    products = {p["id"]: p for p in sandbox.records(tenant, "products")}
    writes = sandbox.writes(tenant)
    for n, pennylane_id in enumerate(product_ids):
        product = products[pennylane_id]
        assert (product["label"], product["reference"]) == (
            f"Produit {n} v{CHANGES_PER_PRODUCT}",
            f"SKU-{n}-{CHANGES_PER_PRODUCT}",
        )
        # The create made by the test, then one write per change.
        assert writes[("products", product["external_reference"])] == 1 + CHANGES_PER_PRODUCT

    # Exactly one supplier invoice per receipt, balanced, on the receipt's supplier.
    receipts = {
        external_reference(tenant, "receipt", p.receipt_id): p
        for p in payloads
        if isinstance(p, ReceiptSendRequested)
    }
    company = sandbox.app.sandbox.companies[sandbox.tokens[tenant]]
    invoices = list(company.supplier_invoices.records.values())
    assert Counter(i.external_reference for i in invoices) == Counter(set(receipts))
    suppliers = {s.id: s.name for s in company.suppliers.records.values()}
    assert sorted(suppliers.values()) == sorted(SUPPLIERS)  # created once each, then found
    for invoice in invoices:
        receipt = receipts[invoice.external_reference]
        amounts = invoice_amounts(receipt.lines)
        assert invoice.currency_amount_before_tax == amounts.before_tax
        assert invoice.currency_tax == amounts.tax
        assert invoice.currency_amount == amounts.total
        assert sum(line.currency_amount for line in invoice.lines) == invoice.currency_amount
        assert sum(line.currency_tax for line in invoice.lines) == invoice.currency_tax
        assert suppliers[invoice.supplier_id] == receipt.supplier_name
        assert company.file_attachments.get(invoice.file_attachment_id).content.startswith(b"%PDF-")

    # The token's limit: no 5 s window ever carried more than 25 requests.
    log = sandbox.requests(tenant)
    outcomes = Counter(r["outcome"] for r in log["requests"])
    print(
        f"{tenant}: {len(log['requests'])} requests {dict(outcomes)}, "
        f"max in any {log['window_seconds']} s window: {log['max_received_in_any_window']}"
    )
    assert log["max_received_in_any_window"] <= 25
    assert outcomes["rate_limited"] == 0
