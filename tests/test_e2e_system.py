"""The whole system as processes: sandbox → poller → inventory → outbound → sandbox.

This is the demo's scenario with assertions: every process is real (sandbox over HTTP, Kafka,
PostgreSQL, the three services as their console scripts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stockpit_ops.demo import TOKEN, Demo, _qty
from stockpit_ops.system import SystemConfig, running_system

pytestmark = pytest.mark.e2e


def test_pennylane_documents_reach_stock_and_stockpit_changes_reach_pennylane(
    kafka_bootstrap_servers: str, database_url: str, tmp_path: Path
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
    )
    with running_system(config) as system:
        demo = Demo(system)
        demo.run()
        stock = demo.stock_by_pennylane_id()
        products = demo.seeded.products
        chair, table, lamp = (
            stock[products[name]] for name in ("Chaise pliante", "Table basse", "Lampe de bureau")
        )
        # Default mode: invoices take real stock at import; the delivery note records only.
        # Chairs: −4 invoiced, credit note without restock, +12 received of 20 ordered.
        assert (_qty(chair["real"]), _qty(chair["incoming"])) == ("8", "8")
        # Tables: −1 invoiced, and the quote's purchase order + invoice are one sale of 2.
        assert _qty(table["real"]) == "-3"
        assert _qty(lamp["real"]) == "-2"
        assert products["Installation sur site"] not in stock, "services move no stock"
        assert table["product_name"] == "Table basse en chêne"
        supplier_invoices = demo.user.call("GET", "/supplier_invoices")["items"]
        assert len(supplier_invoices) == 1
