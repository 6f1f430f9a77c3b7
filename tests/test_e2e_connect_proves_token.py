"""Connecting proves the token, end to end against the sandbox: a tenant is pinned to the
Pennylane company its token belongs to (as `GET /me` says), a token of another company is
refused with a clear message and changes nothing, and only an explicit re-point moves the
tenant (its stock then follows the new company's invoices, the old company's products are
unlinked and keep their stock)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    http,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import SystemConfig, running_system

pytestmark = pytest.mark.e2e

ALICE_TOKEN = "alice-company-token"
STRANGER_TOKEN = "stranger-company-token"


def test_a_token_of_another_company_is_refused_unless_the_tenant_is_repointed(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(ALICE_TOKEN, STRANGER_TOKEN),
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        sandbox.seed_invoices(ALICE_TOKEN, count=6, seed=1, products=3, max_lines=2)
        sandbox.seed_invoices(STRANGER_TOKEN, count=6, seed=2, products=3, max_lines=2)
        me = {token: _me(system.sandbox_url, token) for token in (ALICE_TOKEN, STRANGER_TOKEN)}
        alice_company = me[ALICE_TOKEN]["company"]
        stranger_company = me[STRANGER_TOKEN]["company"]
        assert alice_company["id"] != stranger_company["id"]
        poller = system.url("poller")
        alice = Inventory(system, "alice")

        connect(system, "alice", ALICE_TOKEN)
        status = http("GET", f"{poller}/connections/alice")
        assert status["pennylane_company"]["id"] == alice_company["id"]
        wait_until(
            "alice's stock follows her company's invoices",
            lambda: stock_matches(alice, sandbox.expected_stock(ALICE_TOKEN)),
        )

        with pytest.raises(RuntimeError) as refused:
            connect(system, "alice", STRANGER_TOKEN)
        message = str(refused.value)
        assert "→ 409" in message
        assert f"connected to Pennylane company {alice_company['id']}" in message
        assert f"this token belongs to company {stranger_company['id']}" in message
        assert "/connections/alice/repoint" in message
        assert STRANGER_TOKEN not in message
        status = http("GET", f"{poller}/connections/alice")
        assert status["pennylane_company"]["id"] == alice_company["id"]
        assert status["status"] == "connected"

        with pytest.raises(RuntimeError, match="→ 422"):
            connect(system, "alice", "revoked-or-made-up-token")

        old_products = {p["product_id"]: p for p in alice.products() if p["pennylane_id"]}
        old_stock = _real_by_product(alice)
        moved = http(
            "POST",
            f"{poller}/connections/alice/repoint",
            {"pennylane_token": STRANGER_TOKEN, "settings": status["settings"]},
        )
        assert moved["pennylane_company"]["id"] == stranger_company["id"]
        # The poller forgot the old company's watermarks and snapshots: the new company is
        # read from the start. Inventory unlinked the old company's products (kept, with
        # their stock): only the new company's products follow Pennylane now.
        wait_until(
            "alice's linked stock follows the new company's invoices",
            lambda: stock_matches(alice, sandbox.expected_stock(STRANGER_TOKEN)),
        )
        products = {p["product_id"]: p for p in alice.products()}
        assert all(products[pid]["pennylane_id"] is None for pid in old_products)
        assert {p["pennylane_id"] for p in products.values() if p["pennylane_id"]} >= set(
            sandbox.expected_stock(STRANGER_TOKEN)
        )
        stock_now = _real_by_product(alice)
        assert {pid: stock_now.get(pid) for pid in old_stock} == old_stock, (
            "the old company's products kept their stock"
        )


def _real_by_product(inventory: Inventory) -> dict[str, Decimal]:
    stock: dict[str, Decimal] = {}
    for row in inventory.stock_rows():
        stock[row["product_id"]] = stock.get(row["product_id"], Decimal(0)) + Decimal(
            str(row["real"])
        )
    return {pid: quantity for pid, quantity in stock.items() if quantity}


def _me(sandbox_url: str, token: str) -> Any:
    """Who the sandbox says the token belongs to (Pennylane's `GET /me`)."""
    response = httpx.get(
        f"{sandbox_url}/api/external/v2/me", headers={"Authorization": f"Bearer {token}"}
    )
    response.raise_for_status()
    return response.json()
