"""The soak: 10,000 finalized invoices in Pennylane when the tenant connects, every process real
(sandbox over HTTP, Kafka, PostgreSQL, the three services as their console scripts).

The stock must end exactly as the invoices imply, with one ledger entry per invoice and stocked
product naming exactly that invoice's lines (nothing lost, nothing applied twice), services
holding no stock, and no message given up on. `bench/system_latency.py` times the same soak.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stockpit_ops.probes import Inventory, SandboxAdmin, http
from stockpit_ops.soak import (
    SOAK_DOCUMENTS,
    connect_and_wait_for_stock,
    expected_ledger,
    ledger_differences,
    ledger_entries,
    seed_soak,
)
from stockpit_ops.system import SystemConfig, running_system

# A liveness bound for a busy machine (the pipeline alone takes 2-3 minutes).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TOKEN = "soak-company-token"
TENANT = "soak"


def test_ten_thousand_invoices_reach_the_stock_exactly_once(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
        extra_env={"STOCKPIT_LOG_LEVEL": "WARNING"},
    )
    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        seed_soak(sandbox, TOKEN)
        invoices = sandbox.records(TOKEN, "customer_invoices")
        products = sandbox.records(TOKEN, "products")
        ledger_accounts = sandbox.records(TOKEN, "ledger_accounts")
        assert len(invoices) == SOAK_DOCUMENTS
        assert all(not invoice["draft"] for invoice in invoices)
        services = sandbox.service_products(TOKEN)
        assert services, "some invoice lines are on services"

        inventory = Inventory(system, TENANT)
        expected = sandbox.expected_stock(TOKEN)
        connect_and_wait_for_stock(system, inventory, TOKEN, expected, sync_interval_s=5)

        assert inventory.real_stock() == expected
        assert not services & set(inventory.real_stock()), "services hold no stock"
        wanted = expected_ledger(invoices, products, ledger_accounts)
        entries = ledger_entries(inventory)
        assert sum(map(len, entries.values())) == sum(map(len, wanted.values()))
        assert ledger_differences(wanted, entries) == []
        reconciliation = http("GET", f"{inventory.url}/reconciliation")
        assert reconciliation["balanced"], reconciliation["mismatches"][:5]
        for service in system.services:
            dead_letters = http("GET", system.url(service) + "/operations/dead-letters")
            assert dead_letters == [], (service, dead_letters[:3])
