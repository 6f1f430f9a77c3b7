"""Two tenants side by side on one system (two sandbox companies, two connections).

Every process is real. Each tenant's stock follows its own company's invoices only, and each
tenant's Stockpit-side writes (a rename, a receipt sent) reach its own company only.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    receive_and_send,
    rename_product,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import SystemConfig, running_system

pytestmark = pytest.mark.e2e

TOKENS = {"acme": "acme-company-token", "bistro": "bistro-company-token"}


def test_two_tenants_never_see_each_others_documents_or_writes(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=tuple(TOKENS.values()),
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        for seed, token in enumerate(TOKENS.values()):
            sandbox.seed_invoices(token, count=40, seed=seed, products=8, max_lines=4)
        writes_before = {token: _writes(sandbox, token) for token in TOKENS.values()}
        company_products = {
            tenant: {p["id"] for p in sandbox.records(token, "products")}
            for tenant, token in TOKENS.items()
        }
        assert not company_products["acme"] & company_products["bistro"]
        inventories = {tenant: Inventory(system, tenant) for tenant in TOKENS}
        for tenant, token in TOKENS.items():
            connect(system, tenant, token)
        for tenant, token in TOKENS.items():
            wait_until(
                f"{tenant}'s stock equals its own company's invoices",
                lambda t=tenant, tok=token: stock_matches(  # type: ignore[misc]
                    inventories[t], sandbox.expected_stock(tok)
                ),
            )

        # Stockpit-side writes: acme renames a product, bistro sends a receipt.
        acme_product = min(inventories["acme"].real_stock())
        rename_product(
            inventories["acme"], inventories["acme"].product_id(acme_product), "Renamed by acme"
        )
        bistro_product = min(inventories["bistro"].real_stock())
        receive_and_send(
            inventories["bistro"],
            inventories["bistro"].product_id(bistro_product),
            5,
            "Fournisseur du bistro",
        )
        wait_until(
            "bistro's receipt is a supplier invoice in bistro's company",
            lambda: sandbox.records(TOKENS["bistro"], "supplier_invoices") or None,
        )
        wait_until(
            "acme's rename is in acme's company",
            lambda: (
                any(
                    p["id"] == acme_product and p["label"] == "Renamed by acme"
                    for p in sandbox.records(TOKENS["acme"], "products")
                )
                or None
            ),
        )
        bistro_expected = sandbox.expected_stock(TOKENS["bistro"])
        bistro_expected[bistro_product] = bistro_expected.get(bistro_product, Decimal(0)) + 5
        wait_until(
            "bistro's receipt is in bistro's stock",
            lambda: stock_matches(inventories["bistro"], bistro_expected),
        )

        # Each tenant holds its own company's products only, and its exact stock.
        for tenant in TOKENS:
            linked = {p["pennylane_id"] for p in inventories[tenant].products()}
            assert linked <= company_products[tenant], tenant
        assert inventories["acme"].real_stock() == sandbox.expected_stock(TOKENS["acme"])
        assert inventories["bistro"].real_stock() == bistro_expected
        # Writes reached only the company of the tenant that made them, once each.
        acme_writes = _writes(sandbox, TOKENS["acme"]) - writes_before[TOKENS["acme"]]
        bistro_writes = _writes(sandbox, TOKENS["bistro"]) - writes_before[TOKENS["bistro"]]
        assert sorted(acme_writes.elements()) == [("products", f"seed-product-{acme_product}")]
        assert sorted(resource for resource, _ in bistro_writes.elements()) == [
            "supplier_invoices",
            "suppliers",
        ]
        assert sandbox.records(TOKENS["acme"], "supplier_invoices") == []
        assert len(sandbox.records(TOKENS["bistro"], "supplier_invoices")) == 1
        bistro_labels = {p["label"] for p in sandbox.records(TOKENS["bistro"], "products")}
        assert "Renamed by acme" not in bistro_labels


def _writes(sandbox: SandboxAdmin, token: str) -> Counter[tuple[str, str]]:
    return Counter(
        {(w["resource"], w["external_reference"]): w["count"] for w in sandbox.writes(token)}
    )
