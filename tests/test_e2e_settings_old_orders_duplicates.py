"""Rules 14, 15 and 16 over the whole system (sandbox, Kafka, PostgreSQL, the three services
as processes): the sync interval set in Stockpit drives the poller, old purchase orders'
edits and deletions are seen, and a product recreated in Pennylane is flagged and merged.

The tests share one running system (three tenants, three sandbox companies); under
pytest-xdist the module runs on one worker (tests/conftest.py, ONE_WORKER_MODULES).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from stockpit_contracts import parse_event
from stockpit_contracts.payloads.inventory import ProblemReported
from stockpit_contracts.topics import INVENTORY_PROBLEMS
from stockpit_ops import cli
from stockpit_ops.pennylane_seed import PennylaneUser
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    auth_headers,
    connect,
    http,
    set_sync_interval,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import RunningSystem, SystemConfig, running_system
from stockpit_runtime.auth import Scope
from stockpit_testing.fixtures import read_topic
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

TOKENS = {
    "interval": "interval-company-token",
    "orders": "orders-company-token",
    "duplicates": "duplicates-company-token",
}
D = Decimal


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap_servers: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path_factory.mktemp("rules-14-16"),
        tokens=tuple(TOKENS.values()),
        # Only the newest 2 purchase orders are re-listed on every sync: older ones are found
        # by the re-reading spread over the syncs, or never.
        extra_env={"STOCKPIT_PURCHASE_ORDER_WINDOW": "2"},
    )
    with running_system(config) as running:
        yield running


def _poller_status(system: RunningSystem, tenant: str) -> dict[str, Any]:
    status: dict[str, Any] = http("GET", system.url("poller") + f"/connections/{tenant}")
    return status


def test_the_poller_follows_the_interval_set_in_stockpit(system: RunningSystem) -> None:
    """Rule 16: connected with a one-day interval, the poller reads new invoices only once the
    interval set in Stockpit (inventory's settings) is made 5 s."""
    tenant, token = "interval", TOKENS["interval"]
    sandbox, inventory = SandboxAdmin(system.sandbox_url), Inventory(system, tenant)
    sandbox.seed_invoices(token, count=5, seed=1, products=4, max_lines=3)
    connect(system, tenant, token, sync_interval_s=86_400)
    wait_until(
        "the first sync's stock", lambda: stock_matches(inventory, sandbox.expected_stock(token))
    )
    wait_until(
        "the first sync ended",
        lambda: (
            True
            if (s := _poller_status(system, tenant))["last_successful_sync_at"] and not s["syncing"]
            else None
        ),
    )
    # The interval reaches the poller over Kafka (inventory's outbox), possibly after the first
    # sync: wait for it rather than race it.
    wait_until(
        "the poller follows Stockpit's one-day interval",
        lambda: True if _poller_status(system, tenant)["sync_interval_s"] == 86_400 else None,
    )
    sandbox.seed_invoices(token, count=4, seed=2, customers=0, products=0, max_lines=3)
    expected = sandbox.expected_stock(token)
    assert inventory.real_stock() != expected, "new invoices changed the expected stock"

    set_sync_interval(system, tenant, 5)
    wait_until(
        "the new invoices, read on the 5 s schedule", lambda: stock_matches(inventory, expected)
    )
    assert _poller_status(system, tenant)["sync_interval_s"] == 5
    assert http("GET", inventory.url + "/settings")["sync_interval_seconds"] == 5
    url = inventory.url + "/settings"
    absurd = httpx.put(url, json={"sync_interval_seconds": 1e20}, headers=auth_headers(url))
    assert absurd.status_code == 422, absurd.text


def _goods_product(user: PennylaneUser, label: str, reference: str) -> int:
    product = user.call(
        "POST",
        "/products",
        {
            "label": label,
            "reference": reference,
            "price_before_tax": "10.00",
            "vat_rate": "FR_200",
            "unit": "piece",
            "ledger_account_id": user.ledger_account_id("707000"),
        },
    )
    return int(product["id"])


def _customer(user: PennylaneUser) -> int:
    address = {"address": "1 rue", "postal_code": "75001", "city": "Paris", "country_alpha2": "FR"}
    customer = user.call(
        "POST", "/company_customers", {"name": "Café des Arts", "billing_address": address}
    )
    return int(customer["id"])


def _invoice(user: PennylaneUser, customer: int, product: int, quantity: int) -> int:
    today = dt.datetime.now(dt.UTC).date()
    created = user.call(
        "POST",
        "/customer_invoices",
        {
            "customer_id": customer,
            "date": today.isoformat(),
            "deadline": (today + dt.timedelta(days=30)).isoformat(),
            "draft": False,
            "invoice_lines": [{"product_id": product, "quantity": quantity}],
        },
    )
    return int(created["id"])


def test_edits_and_deletions_of_old_purchase_orders_are_seen(system: RunningSystem) -> None:
    """Rule 14: five purchase orders, only the newest two re-listed each sync; the oldest is
    edited and the second oldest deleted in Pennylane, and stock follows without import-now."""
    tenant, token = "orders", TOKENS["orders"]
    user = PennylaneUser(system.sandbox_url, token)
    inventory = Inventory(system, tenant)
    try:
        product, customer = _goods_product(user, "Carton", "CA-1"), _customer(user)
        today = dt.datetime.now(dt.UTC).date().isoformat()

        def purchase_order(quantity: int) -> int:
            body = {
                "customer_id": customer,
                "date": today,
                "document_type": "purchasing_order",
                "invoice_lines": [{"product_id": product, "quantity": quantity}],
            }
            return int(user.admin("POST", "/commercial_documents", body)["id"])

        oldest, second, *_newer = [purchase_order(q) for q in (1, 2, 3, 4, 5)]
        connect(system, tenant, token)
        wait_until(
            "every purchase order's stock", lambda: stock_matches(inventory, {product: D(-15)})
        )

        lines = {"invoice_lines": [{"product_id": product, "quantity": 10}]}
        user.admin("PUT", f"/commercial_documents/{oldest}", lines)
        http("DELETE", f"{system.sandbox_url}/_sandbox/{token}/commercial_documents/{second}")
        wait_until(
            "the old purchase orders' edit and deletion",
            lambda: stock_matches(inventory, {product: D(-(10 + 3 + 4 + 5))}),
        )
    finally:
        user.close()


def test_a_recreated_product_is_flagged_merged_and_its_id_moves_the_original(
    system: RunningSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 15: a product recreated in Pennylane with the same SKU is flagged (product API and
    problems topic); `stockpit merge` moves its stock to the original; a later invoice naming
    the duplicate's Pennylane id moves the original; nothing is written to Pennylane."""
    tenant, token = "duplicates", TOKENS["duplicates"]
    user = PennylaneUser(system.sandbox_url, token)
    sandbox, inventory = SandboxAdmin(system.sandbox_url), Inventory(system, tenant)
    try:
        original_id, customer = _goods_product(user, "Chaise", "CH-01"), _customer(user)
        _invoice(user, customer, original_id, 4)
        connect(system, tenant, token)
        wait_until("the original's stock", lambda: stock_matches(inventory, {original_id: D(-4)}))

        duplicate_id = _goods_product(user, "Chaise (recréée)", "CH-01")

        def flagged() -> dict[str, Any] | None:
            products = {p["pennylane_id"]: p for p in inventory.products()}
            found = products.get(duplicate_id)
            return found if found and found["likely_duplicate_of"] else None

        duplicate = wait_until("the recreated product flagged", flagged)
        original = inventory.product_id(original_id)
        assert duplicate["likely_duplicate_of"] == original
        problems = asyncio.run(
            read_topic(
                system.config.kafka_bootstrap_servers,
                INVENTORY_PROBLEMS.name(system.config.topic_prefix),
                expect=1,
            )
        )
        reported = [
            event.payload
            for event in map(parse_event, (record.value for record in problems))
            if event.tenant_id == tenant and isinstance(event.payload, ProblemReported)
        ]
        assert any(
            p.subject_id == duplicate["product_id"] and p.reason.startswith("likely_duplicate")
            for p in reported
        ), reported

        _invoice(user, customer, duplicate_id, 2)
        wait_until(
            "the duplicate's own stock",
            lambda: stock_matches(inventory, {original_id: D(-4), duplicate_id: D(-2)}),
        )
        products_before = sandbox.records(token, "products")
        writes_before = [w for w in sandbox.writes(token) if w["resource"] == "products"]

        monkeypatch.setenv("STOCKPIT_INVENTORY_URL", system.url("inventory"))
        monkeypatch.setenv(
            "STOCKPIT_TOKEN", system.token(tenants=[tenant], scopes=[Scope.STOCK_WRITE])
        )
        result = CliRunner().invoke(cli.app, ["merge", tenant, duplicate["product_id"], original])
        assert result.exit_code == 0, result.output
        assert inventory.real_stock() == {original_id: D(-6)}
        merged = {p["product_id"]: p for p in inventory.products()}[duplicate["product_id"]]
        assert merged["merged_into"] == original
        assert merged["active"] is False
        ledger = http("GET", f"{inventory.url}/products/{original}/ledger")
        assert any(entry["cause_kind"] == "merge" for entry in ledger)

        _invoice(user, customer, duplicate_id, 1)
        wait_until(
            "a later invoice naming the duplicate's id moves the original",
            lambda: stock_matches(inventory, {original_id: D(-7)}),
        )
        assert http("GET", f"{inventory.url}/reconciliation")["balanced"] is True
        # Nothing was written to Pennylane: its products are as they were.
        assert sandbox.records(token, "products") == products_before
        assert [w for w in sandbox.writes(token) if w["resource"] == "products"] == writes_before
    finally:
        user.close()
