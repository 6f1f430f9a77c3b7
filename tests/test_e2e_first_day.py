"""A shop owner's first day over the real system (sandbox, poller, inventory, outbound as
processes): connect, start from a stock count (preview, then apply, from a French spreadsheet),
an invoice sells more than was counted and the sync report names it by its number, then
Pennylane refuses the token and the report says a new token is needed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from stockpit_ops import cli
from stockpit_ops.probes import Inventory, SandboxAdmin, connect, http, stock_matches, wait_until
from stockpit_ops.system import SystemConfig, running_system
from stockpit_runtime.auth import Scope
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

TOKEN = "first-day-token"
TENANT = "firstday"


def _report(inventory: Inventory, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = http("GET", f"{inventory.url}/report", **params)
    return answer


def test_first_day_count_then_a_negative_stock_reported_by_invoice_number_then_token_refused(
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
        sandbox = SandboxAdmin(system.sandbox_url)
        sandbox.seed_invoices(
            TOKEN, count=6, products=3, customers=2, service_share=0, max_lines=3, seed=21
        )
        inventory = Inventory(system, TENANT)
        connect(system, TENANT, TOKEN)
        wait_until(
            "the history is in stock",
            lambda: stock_matches(inventory, sandbox.expected_stock(TOKEN)),
        )
        products = inventory.products()
        assert len(products) == 3

        # The count, as a French spreadsheet saves it: semicolons, decimal commas.
        monkeypatch.setenv("STOCKPIT_INVENTORY_URL", system.url("inventory"))
        # The CLI calls with the shop owner's token: this tenant only, stock read and write.
        monkeypatch.setenv(
            "STOCKPIT_TOKEN",
            system.token(tenants=[TENANT], scopes=[Scope.STOCK_READ, Scope.STOCK_WRITE]),
        )
        count_file = tmp_path / "inventaire.csv"
        rows = [f"{p['sku']};Principal;{index},5" for index, p in enumerate(products)]
        count_file.write_text("sku;location;counted\n" + "\n".join(rows) + "\n", encoding="utf-8")
        runner = CliRunner()
        preview = runner.invoke(cli.app, ["count", TENANT, str(count_file)], terminal_width=200)
        assert preview.exit_code == 0, preview.output
        assert "Preview" in preview.output
        assert "run again with --apply" in preview.output
        assert stock_matches(inventory, sandbox.expected_stock(TOKEN)), "a preview moves nothing"
        applied = runner.invoke(
            cli.app, ["count", TENANT, str(count_file), "--apply"], terminal_width=200
        )
        assert applied.exit_code == 0, applied.output
        counted = {
            p["pennylane_id"]: Decimal(index) + Decimal("0.5") for index, p in enumerate(products)
        }
        wait_until("real stock is the count", lambda: inventory.real_stock() == counted or None)
        # The history, deducted from zero before the count, was negative: those problems are
        # the day before's; the report filters by date.
        counted_at = dt.datetime.now(dt.UTC).isoformat()

        # Invoices arrive: one sells more than was counted.
        more = sandbox.seed_invoices(
            TOKEN, count=2, products=0, customers=0, min_lines=3, max_lines=3, seed=22
        )
        new_ids = set(range(more["first_id"], more["last_id"] + 1))
        invoices = [i for i in sandbox.records(TOKEN, "customer_invoices") if i["id"] in new_ids]
        sold: dict[int, Decimal] = {}
        for invoice in invoices:
            for line in invoice["invoice_lines_items"]:
                product_id = line["product"]["id"]
                quantity = Decimal(str(line["quantity"]))
                sold[product_id] = sold.get(product_id, Decimal(0)) + quantity
        expected = {
            p: counted[p] - sold.get(p, Decimal(0))
            for p in counted
            if counted[p] != sold.get(p, Decimal(0))
        }
        wait_until("the invoices are in stock", lambda: inventory.real_stock() == expected or None)
        negative = {p for p, real in expected.items() if real < 0}
        assert negative, f"the seeded invoices sell more than was counted: {sold} vs {counted}"

        def negative_problems() -> list[dict[str, Any]] | None:
            report = _report(inventory, kind="negative_stock", since=counted_at)
            items: list[dict[str, Any]] = report["problems"]["items"]
            return items if len(items) >= len(negative) else None

        problems = wait_until("negative stock is reported", negative_problems)
        numbers = {i["invoice_number"] for i in invoices}
        sku_of = {p["pennylane_id"]: p["sku"] for p in products}
        assert {p["sku"] for p in problems} == {sku_of[p] for p in negative}
        for problem in problems:
            assert problem["document"]["number"] in numbers, problem
            assert problem["document"]["issued_on"] is not None
            assert problem["location_name"] == "Principal"
            assert "stockpit count" in problem["hint"]

        report = _report(inventory, runs=500)
        assert report["status"]["open_problems"] >= len(negative)
        runs = report["sync_runs"]["items"]
        assert "succeeded" in {r["outcome"] for r in runs}, "the poller's runs reach the report"
        assert sum(r["documents"] for r in runs) >= 8, runs
        monkeypatch.setattr(cli, "console", Console(width=250))
        shown = runner.invoke(
            cli.app, ["report", TENANT, "--kind", "negative_stock", "--since", counted_at]
        )
        assert shown.exit_code == 0, shown.output
        assert any(number in shown.output for number in numbers)

        # Pennylane refuses the token: the report says a new one is needed.
        http("PUT", f"{system.sandbox_url}/_sandbox/{TOKEN}/scopes", {"scopes": []})

        def refused() -> dict[str, Any] | None:
            status: dict[str, Any] = http("GET", f"{inventory.url}/status")
            return status if status["needs_new_token"] else None

        status = wait_until("the report says the token was refused", refused)
        assert status["open_problems_by_kind"].get("token_rejected", 0) >= 1
        [rejected, *_] = _report(inventory, kind="token_rejected")["problems"]["items"]
        assert "new token" in rejected["hint"]
        assert TOKEN not in str(rejected)
