"""Last change wins on both sides (PRODUCT.md rule 13), over the whole system.

Every process is real. While the tenant is disconnected one product is renamed in Stockpit and
later in Pennylane, another in Pennylane and later in Stockpit. After reconnection both sides
hold the later name of each, and neither side echoes the other's change back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    disconnect,
    http,
    reconnect,
    rename_product,
    wait_until,
)
from stockpit_ops.system import SystemConfig, running_system

pytestmark = pytest.mark.e2e

TENANT = "lww"
TOKEN = "last-change-wins-token"


def test_renames_on_both_sides_while_disconnected_end_on_the_later_one(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        sandbox.seed_invoices(TOKEN, count=3, seed=14, products=2, max_lines=2, service_share=0)
        stockpit_first, pennylane_first = sorted(
            p["id"] for p in sandbox.records(TOKEN, "products")
        )
        inventory = Inventory(system, TENANT)
        connect(system, TENANT, TOKEN)
        wait_until(
            "both products are in Stockpit",
            lambda: _names(inventory).keys() >= {stockpit_first, pennylane_first} or None,
        )

        disconnect(system, TENANT)
        # One product: renamed in Stockpit, later in Pennylane.
        rename_product(inventory, inventory.product_id(stockpit_first), "Chair (Stockpit, A)")
        sandbox.rename_product(TOKEN, stockpit_first, "Chair (Pennylane, B)")
        # The other: renamed in Pennylane, later in Stockpit.
        sandbox.rename_product(TOKEN, pennylane_first, "Table (Pennylane, B)")
        rename_product(inventory, inventory.product_id(pennylane_first), "Table (Stockpit, A)")
        reconnect(system, TENANT)

        expected = {stockpit_first: "Chair (Pennylane, B)", pennylane_first: "Table (Stockpit, A)"}
        wait_until(
            "both sides hold the later rename of each product",
            lambda: (
                (
                    _labels(sandbox) == expected
                    and {pid: _names(inventory)[pid] for pid in expected} == expected
                )
                or None
            ),
        )
        writes = wait_until(
            "outbound settled both writes",
            lambda: _settled_writes(system.url("outbound")),
        )
        # Pennylane's later rename stood: nothing was written for the chair...
        by_product = {row["entity_id"]: row for row in writes}
        chair = by_product[inventory.product_id(stockpit_first)]
        assert chair["status"] == "superseded"
        assert "last change wins" in chair["last_error"]
        # ...and the table got Stockpit's later rename, written once.
        assert by_product[inventory.product_id(pennylane_first)]["status"] == "done"
        assert len(writes) == 2, "no echo: Stockpit taking Pennylane's name wrote nothing back"
        puts = [
            r
            for r in http("GET", f"{sandbox.url}/{TOKEN}/requests")["requests"]
            if r["method"] == "PUT"
        ]
        # The test's two Pennylane renames and outbound's one write of the table.
        assert sorted(r["path"].rsplit("/", 1)[-1] for r in puts) == sorted(
            [str(stockpit_first), str(pennylane_first), str(pennylane_first)]
        )
        assert _labels(sandbox) == expected
        assert {pid: _names(inventory)[pid] for pid in expected} == expected


def _names(inventory: Inventory) -> dict[int, str]:
    return {p["pennylane_id"]: p["name"] for p in inventory.products() if p["pennylane_id"]}


def _labels(sandbox: SandboxAdmin) -> dict[int, str]:
    return {p["id"]: p["label"] for p in sandbox.records(TOKEN, "products")}


def _settled_writes(outbound_url: str) -> list[dict[str, Any]] | None:
    pending = http("GET", f"{outbound_url}/outbound/writes", tenant_id=TENANT, status="pending")
    rows: list[dict[str, Any]] = http(
        "GET",
        f"{outbound_url}/outbound/writes",
        tenant_id=TENANT,
        status=["done", "failed", "superseded"],
    )
    return rows if not pending and len(rows) >= 2 else None
