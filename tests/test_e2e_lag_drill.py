"""The lag drill: inventory stops in the middle of a 10,000-document stream and starts again.

The poller keeps publishing while inventory is down, so its consumer group falls behind; once
back, inventory must catch up by itself: the group's lag on the documents topic returns to 0,
the stock ends exactly as the invoices imply, with one ledger entry per invoice and product,
and no message is given up on. Every process is real (sandbox, Kafka, PostgreSQL, services).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    consumer_lag,
    http,
    stock_matches,
    wait_until,
)
from stockpit_ops.soak import (
    SOAK_DOCUMENTS,
    expected_ledger,
    ledger_differences,
    ledger_entries,
    seed_soak,
)
from stockpit_ops.system import SystemConfig, running_system

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

TOKEN = "lag-drill-company-token"
TENANT = "lagdrill"


def test_inventory_stopped_mid_stream_catches_up_with_nothing_lost(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
        extra_env={"STOCKPIT_LOG_LEVEL": "WARNING"},
    )
    topic = PENNYLANE_DOCUMENTS.name(config.topic_prefix)
    group = f"{config.topic_prefix}inventory.documents"

    def lag() -> int:
        return consumer_lag(kafka_bootstrap_servers, group, topic)

    with running_system(config) as system:
        sandbox = SandboxAdmin(system.sandbox_url)
        seed_soak(sandbox, TOKEN)
        invoices = sandbox.records(TOKEN, "customer_invoices")
        products = sandbox.records(TOKEN, "products")
        ledger_accounts = sandbox.records(TOKEN, "ledger_accounts")
        inventory = Inventory(system, TENANT)
        expected = sandbox.expected_stock(TOKEN)

        connect(system, TENANT, TOKEN, sync_interval_s=5)
        wait_until(
            "inventory applied part of the stream",
            lambda: True if inventory.real_stock() else None,
        )
        system.services["inventory"].stop()
        # The poller goes on reading Pennylane: the documents pile up behind the stopped group.
        lag_while_down = wait_until(
            "the stream grew while inventory was down",
            lambda: (
                grown
                if (grown := consumer_lag(kafka_bootstrap_servers, group, topic)) > 0
                else None
            ),
        )
        time.sleep(5)
        lag_at_restart = consumer_lag(kafka_bootstrap_servers, group, topic)
        assert lag_at_restart >= lag_while_down

        system.start("inventory")
        wait_until(
            "inventory caught up: the group's lag is back to 0",
            lambda: True if lag() == 0 else None,
            timeout_s=900,
        )
        wait_until(
            f"the {SOAK_DOCUMENTS} documents reached the stock",
            lambda: stock_matches(inventory, expected),
            timeout_s=900,
        )
        wanted = expected_ledger(invoices, products, ledger_accounts)
        assert ledger_differences(wanted, ledger_entries(inventory)) == []
        assert http("GET", f"{inventory.url}/reconciliation")["balanced"]
        for service in system.services:
            assert http("GET", system.url(service) + "/operations/dead-letters") == [], service
