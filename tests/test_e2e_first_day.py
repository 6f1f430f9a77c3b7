"""A shop owner's first day over the real system (sandbox, poller, inventory, outbound as
processes): connect (last month's invoices move nothing), start from a stock count (preview,
then apply, from a French spreadsheet), invoices and a credit note arrive, one invoice sells
more than was counted and the sync report names it by its number; then the token is revoked in
Pennylane: the connection needs a new token and no request is sent for the tenant any more;
a new token resumes the sync where it stopped, and the problem list is right."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from stockpit_ops import cli
from stockpit_ops.pennylane_seed import PennylaneUser
from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    auth_headers,
    connect,
    http,
    wait_until,
)
from stockpit_ops.system import RunningSystem, SystemConfig, running_system
from stockpit_runtime.auth import Scope
from typer.testing import CliRunner

pytestmark = pytest.mark.e2e

TOKEN = "first-day-token"
NEW_TOKEN = "first-day-token-renewed"
TENANT = "firstday"
SYNC_INTERVAL_S = 5


def _report(inventory: Inventory, **params: Any) -> dict[str, Any]:
    answer: dict[str, Any] = http("GET", f"{inventory.url}/report", **params)
    return answer


def _connection(system: RunningSystem) -> dict[str, Any]:
    status: dict[str, Any] = http("GET", system.url("poller") + f"/connections/{TENANT}")
    return status


class Shop:
    """The shop's Pennylane company, as its user works in it (the public API)."""

    def __init__(self, system: RunningSystem, token: str) -> None:
        self.user = PennylaneUser(system.sandbox_url, token)
        self.today = dt.datetime.now(dt.UTC).date()
        address = {
            "address": "12 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country_alpha2": "FR",
        }
        customer = {"name": "Café des Arts", "billing_address": address}
        self.customer_id = int(self.user.call("POST", "/company_customers", customer)["id"])

    def use(self, system: RunningSystem, token: str) -> None:
        self.user.close()
        self.user = PennylaneUser(system.sandbox_url, token)

    def invoice(self, *lines: tuple[int, str]) -> dict[str, Any]:
        """A finalized invoice of today (a credit note when the quantities are negative)."""
        body = {
            "customer_id": self.customer_id,
            "date": self.today.isoformat(),
            "deadline": (self.today + dt.timedelta(days=30)).isoformat(),
            "draft": False,
            "invoice_lines": [
                {"product_id": product, "quantity": float(quantity)} for product, quantity in lines
            ],
        }
        created: dict[str, Any] = self.user.call("POST", "/customer_invoices", body)
        return created

    def credit_note(self, invoice: int, *lines: tuple[int, str]) -> dict[str, Any]:
        credit_note = self.invoice(*((product, f"-{quantity}") for product, quantity in lines))
        self.user.call(
            "POST",
            f"/customer_invoices/{invoice}/link_credit_note",
            {"credit_note_id": credit_note["id"]},
        )
        return credit_note


def test_first_day_from_connecting_to_a_refused_token_and_back(
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
        inventory = Inventory(system, TENANT)
        today = dt.datetime.now(dt.UTC).date()
        # Last month's sales, in Pennylane before the shop connects.
        history = sandbox.seed_invoices(
            TOKEN,
            count=6,
            products=3,
            customers=1,
            service_share=0,
            max_lines=3,
            seed=21,
            start_date=(today - dt.timedelta(days=30)).isoformat(),
        )
        assert history["last_id"] >= history["first_id"]

        # 1. Connect as a new user does (no start date): the catalog arrives, history does not.
        connect(system, TENANT, TOKEN, sync_interval_s=SYNC_INTERVAL_S, from_connection_day=True)
        assert _connection(system)["settings"]["documents_since"] == today.isoformat()

        def first_sync() -> list[dict[str, Any]] | None:
            runs: list[dict[str, Any]] = _report(inventory)["sync_runs"]
            done = [r for r in runs if r["outcome"] == "succeeded"]
            return done if done and len(inventory.products()) == 3 else None

        synced = wait_until("the first sync is in the report", first_sync)
        assert sum(r["documents"] for r in synced) == 0, "history before today is not read"
        assert inventory.real_stock() == {}, "last month's invoices moved no stock"
        assert http("GET", f"{inventory.url}/orders") == []
        products = sorted(inventory.products(), key=lambda p: p["sku"])

        # 2. The count, as a French spreadsheet saves it: semicolons, decimal commas.
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
        assert inventory.real_stock() == {}, "a preview moves nothing"
        applied = runner.invoke(
            cli.app, ["count", TENANT, str(count_file), "--apply"], terminal_width=200
        )
        assert applied.exit_code == 0, applied.output
        a, b, c = (p["pennylane_id"] for p in products)
        counted = {a: Decimal("0.5"), b: Decimal("1.5"), c: Decimal("2.5")}
        wait_until("real stock is the count", lambda: inventory.real_stock() == counted or None)

        # 3. Invoices and a credit note arrive: one invoice sells more chairs than were counted.
        shop = Shop(system, TOKEN)
        oversold = shop.invoice((a, "3"), (b, "1"))
        other = shop.invoice((c, "1"))
        credit = shop.credit_note(other["id"], (c, "1"))  # restock is off: stock stays
        expected = {a: Decimal("-2.5"), b: Decimal("0.5"), c: Decimal("1.5")}
        wait_until("the invoices are in stock", lambda: inventory.real_stock() == expected or None)

        def credit_settled() -> bool | None:
            returns = http("GET", f"{inventory.url}/returns")
            attached = {r["credit_note_id"] for r in returns if r["order_id"] is not None}
            return True if credit["id"] in attached else None

        wait_until("the credit note's return is attached to its order", credit_settled)
        assert inventory.real_stock() == expected

        # 4. The report names the invoice by its number, and says what to do.
        def negative_problems() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = _report(inventory, kind="negative_stock")["problems"]
            return items or None

        [problem] = wait_until("negative stock is reported", negative_problems)
        assert problem["document"]["number"] == oversold["invoice_number"]
        assert problem["document"]["issued_on"] == today.isoformat()
        assert (problem["sku"], problem["location_name"]) == (products[0]["sku"], "Principal")
        assert "stockpit count" in problem["hint"]
        report = _report(inventory, runs=500)
        assert report["status"]["open_problems_by_kind"] == {"negative_stock": 1}
        assert sum(r["documents"] for r in report["sync_runs"]) >= 3, "the runs reach the report"
        monkeypatch.setattr(cli, "console", Console(width=250))
        shown = runner.invoke(cli.app, ["report", TENANT])
        assert shown.exit_code == 0, shown.output
        assert oversold["invoice_number"] in shown.output

        # 5. The token is revoked in Pennylane (a new one made): the connection needs a new
        # token, and nothing more is sent for the tenant, on schedule or on demand.
        sandbox.revoke_token(TOKEN, NEW_TOKEN)
        shop.use(system, NEW_TOKEN)
        while_refused = shop.invoice((c, "1"))

        def refused() -> dict[str, Any] | None:
            status: dict[str, Any] = http("GET", f"{inventory.url}/status")
            return status if status["needs_new_token"] else None

        status = wait_until("the report says the token was refused", refused)
        assert status["open_problems_by_kind"] == {"negative_stock": 1, "token_rejected": 1}
        [rejected] = _report(inventory, kind="token_rejected")["problems"]
        assert "new token" in rejected["hint"]
        assert TOKEN not in str(rejected)
        connection = _connection(system)
        assert (connection["status"], connection["needs_new_token"]) == ("needs_new_token", True)
        sent = sandbox.requests_refused(TOKEN)
        assert sent >= 1
        runs_before = len(_report(inventory, runs=500)["sync_runs"])
        asked = httpx.post(
            system.url("poller") + f"/connections/{TENANT}/import-now",
            headers=auth_headers(system.url("poller")),
            timeout=30,
        )
        assert asked.status_code == 409, asked.text
        assert "new token" in asked.json()["detail"]

        due = dt.datetime.fromisoformat(connection["next_sync_at"])
        waited = due + dt.timedelta(seconds=2 * SYNC_INTERVAL_S)
        wait_until(
            "two sync intervals past the next sync that was due",
            lambda: dt.datetime.now(dt.UTC) > waited or None,
        )
        assert sandbox.requests_refused(TOKEN) == sent, "no request with the refused token"
        assert len(_report(inventory, runs=500)["sync_runs"]) == runs_before, "no sync ran"
        assert inventory.real_stock() == expected, "nothing was read meanwhile"

        # 6. Connected again with the new token: the sync resumes where it stopped.
        connect(
            system, TENANT, NEW_TOKEN, sync_interval_s=SYNC_INTERVAL_S, from_connection_day=True
        )
        resumed = {**expected, c: Decimal("0.5")}
        wait_until(
            "the invoice made meanwhile arrives",
            lambda: inventory.real_stock() == resumed or None,
        )

        def healed() -> dict[str, Any] | None:
            status: dict[str, Any] = http("GET", f"{inventory.url}/status")
            return None if status["needs_new_token"] else status

        status = wait_until("the report says the token works again", healed)
        assert status["open_problems_by_kind"] == {"negative_stock": 1}
        problems = _report(inventory)["problems"]
        assert [(p["kind"], p["acknowledged_at"] is None) for p in problems] == [
            ("token_rejected", False),
            ("negative_stock", True),
        ]
        orders = http("GET", f"{inventory.url}/orders")
        numbers = {d["number"] for o in orders for d in o["document_details"]}
        assert numbers == {
            oversold["invoice_number"],
            other["invoice_number"],
            while_refused["invoice_number"],
        }, "each invoice once, none of last month's"
        assert sandbox.requests_refused(TOKEN) == sent
        assert _connection(system)["settings"]["documents_since"] == today.isoformat()
