"""The whole system as processes: sandbox → poller → inventory → outbound → sandbox.

This is the demo's scenario with assertions: every process is real (sandbox over HTTP, Kafka,
PostgreSQL, the three services as their console scripts).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from stockpit_ops import cli
from stockpit_ops.demo import TOKEN, Demo, _qty
from stockpit_ops.probes import http
from stockpit_ops.system import SystemConfig, running_system
from stockpit_runtime.auth import Scope
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e


def test_pennylane_documents_reach_stock_and_stockpit_changes_reach_pennylane(
    kafka_bootstrap_servers: str,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path,
        tokens=(TOKEN,),
    )
    with running_system(config) as system:
        demo = Demo(system, tmp_path)
        demo.run()
        stock = demo.stock_by_pennylane_id()
        products = demo.seeded.products
        chair, table, lamp = (
            stock[products[name]] for name in ("Chaise pliante", "Table basse", "Lampe de bureau")
        )
        # From the count (12 chairs, 5 tables, 1 lamp; last month's invoice is history).
        # Default mode: invoices take real stock at import; the delivery note records only.
        # Chairs: −4 invoiced, credit note without restock, +12 received of 20 ordered.
        assert (_qty(chair["real"]), _qty(chair["incoming"])) == ("20", "8")
        # Tables: −1 invoiced, and the quote's purchase order + invoice are one sale of 2.
        assert _qty(table["real"]) == "2"
        # Two lamps sold, one counted: the one negative level, on purpose, in the report.
        assert _qty(lamp["real"]) == "-1"
        report = http("GET", system.url("inventory") + "/tenants/demo/report")
        [problem] = report["problems"]
        invoice = demo.user.call("GET", f"/customer_invoices/{demo.seeded.invoices['F2']}")
        assert (problem["kind"], problem["sku"]) == ("negative_stock", "LA-03")
        assert problem["document"]["number"] == invoice["invoice_number"]
        assert products["Installation sur site"] not in stock, "services move no stock"
        assert table["product_name"] == "Table basse en chêne"
        supplier_invoices = demo.user.call("GET", "/supplier_invoices")["items"]
        assert len(supplier_invoices) == 1

        # The operator's command reads the same figures over the services' HTTP APIs.
        monkeypatch.setenv("STOCKPIT_POLLER_URL", system.url("poller"))
        monkeypatch.setenv("STOCKPIT_INVENTORY_URL", system.url("inventory"))
        monkeypatch.setenv(
            "STOCKPIT_TOKEN",
            system.token(tenants=["demo"], scopes=[Scope.STOCK_READ, Scope.CONNECTIONS_ADMIN]),
        )
        shown = CliRunner().invoke(cli.app, ["stock", "demo"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        assert "Table basse en chêne" in shown.output
        status = CliRunner().invoke(cli.app, ["status", "demo"], terminal_width=200)
        assert status.exit_code == 0, status.output
        assert "connected" in status.output
        ledger = CliRunner().invoke(
            cli.app, ["ledger", "demo", demo.product_id("Chaise pliante")], terminal_width=200
        )
        assert ledger.exit_code == 0, ledger.output
        assert ledger.output.count("\n") > 5, "the chair's ledger has entries"
