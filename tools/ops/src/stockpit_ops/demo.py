"""`make demo`: the whole system end to end, as separate processes, on local Kafka and PostgreSQL.

1. start the Pennylane sandbox and the inventory, outbound and poller services;
2. seed the sandbox as a small French business would have it: products (one a service on 706),
   customers, and an invoice of last month;
3. connect the tenant (no start day: documents from today on, last month's invoice is history)
   with a 5 s sync interval, and wait for the catalog;
4. start from a stock count (a French spreadsheet: preview, then apply);
5. today's documents arrive (invoices, a draft, a credit note, a quote with its purchase order
   and the invoice made from it); one sells more desk lamps than were counted, on purpose: stock
   goes negative (an invoice is never refused) and the sync report says so;
6. record a delivery note, a purchase and its receipt, and send the receipt to Pennylane;
7. rename one product in Stockpit and another in Pennylane;
8. print the stock, what was written to Pennylane, and the tenant's sync report.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table
from stockpit_runtime.auth import Scope

from stockpit_ops import cli
from stockpit_ops.pennylane_seed import (
    PennylaneUser,
    SeededBusiness,
    seed_catalog,
    seed_documents,
    seed_history,
)
from stockpit_ops.probes import connect, http
from stockpit_ops.system import RunningSystem, SystemConfig, running_system

console = Console()
TENANT = "demo"
TOKEN = "demo-token"  # noqa: S105 - the sandbox company's token, not a secret
T = TypeVar("T")
# The shop's count, as a French spreadsheet saves it (semicolons, decimal commas): one desk lamp.
COUNT_CSV = "sku;location;counted\nCH-01;Principal;12\nTB-02;Principal;5\nLA-03;Principal;1,0\n"


def wait_for(what: str, probe: Callable[[], T | None], timeout_s: float = 120) -> T:
    """Poll `probe` until it returns something, showing progress."""
    deadline = time.monotonic() + timeout_s
    with console.status(f"waiting: {what}…"):
        while time.monotonic() < deadline:
            result = probe()
            if result is not None:
                console.print(f"[green]✓[/green] {what}")
                return result
            time.sleep(0.5)
    raise TimeoutError(f"gave up waiting: {what}")


class Demo:
    def __init__(self, system: RunningSystem, work_dir: Path) -> None:
        self.system = system
        self.work_dir = work_dir
        self.inventory = system.url("inventory") + f"/tenants/{TENANT}"
        self.user = PennylaneUser(system.sandbox_url, TOKEN)
        self.seeded = SeededBusiness()

    def stock_by_pennylane_id(self) -> dict[int, dict[str, Any]]:
        rows = http("GET", f"{self.inventory}/stock")
        return {row["pennylane_product_id"]: row for row in rows if row["pennylane_product_id"]}

    def product_id(self, name: str) -> str:
        pennylane_id = self.seeded.products[name]
        for product in http("GET", f"{self.inventory}/products"):
            if product["pennylane_id"] == pennylane_id:
                return str(product["product_id"])
        raise LookupError(name)

    def run(self) -> None:
        today = dt.datetime.now(dt.UTC).date()
        with console.status("seeding the Pennylane sandbox…"):
            self.seeded = seed_catalog(self.user)
            seed_history(self.user, self.seeded, today - dt.timedelta(days=30))
        console.print(
            f"[green]✓[/green] Pennylane holds {len(self.seeded.products)} products (one a "
            f"service on 706), {len(self.seeded.customers)} customers and last month's invoice"
        )
        connect(self.system, TENANT, TOKEN, from_connection_day=True)
        console.print(
            f"[green]✓[/green] tenant {TENANT} connected, syncing every 5 s, documents from "
            "today on: last month's invoice is history, the opening stock comes from a count"
        )
        p = self.seeded.products
        goods = {p["Chaise pliante"], p["Table basse"], p["Lampe de bureau"]}

        def catalog() -> bool | None:
            known = {row["pennylane_id"] for row in http("GET", f"{self.inventory}/products")}
            return True if goods <= known else None

        wait_for("catalog imported into Stockpit", catalog)
        self.count_stock()
        with console.status("today's documents in Pennylane…"):
            seed_documents(self.user, self.seeded, today)
        console.print(
            "[green]✓[/green] today in Pennylane: two invoices, a draft, a credit note, a quote "
            "with its purchase order and the invoice made from it"
        )
        expected = {p["Chaise pliante"]: "8", p["Table basse"]: "2", p["Lampe de bureau"]: "-1"}

        def synced() -> dict[int, dict[str, Any]] | None:
            stock = self.stock_by_pennylane_id()
            real = {pid: _qty(row["real"]) for pid, row in stock.items()}
            return stock if all(real.get(pid) == qty for pid, qty in expected.items()) else None

        wait_for("invoices, credit note and purchase order imported into stock", synced)
        console.print(
            "[yellow]![/yellow] Marie Dupont bought 2 desk lamps and the count found 1: the lamp "
            "is at -1 on purpose (an invoice is never refused), and the sync report names the "
            "invoice"
        )
        self.deliver_and_receive(today)
        self.rename_on_both_sides()
        self.show_results()
        self.show_report()

    def stockpit(self, *args: str) -> None:
        """The `stockpit` command, as the shop owner runs it (a token for this tenant only)."""
        environment = {
            "STOCKPIT_INVENTORY_URL": self.system.url("inventory"),
            "STOCKPIT_POLLER_URL": self.system.url("poller"),
            "STOCKPIT_TOKEN": self.system.token(
                tenants=[TENANT], scopes=[Scope.STOCK_READ, Scope.STOCK_WRITE]
            ),
        }
        before = {name: os.environ.get(name) for name in environment}
        shown_on = cli.console
        console.rule(f"$ stockpit {' '.join(args)}")
        try:
            os.environ.update(environment)
            cli.console = console
            cli.app(list(args), standalone_mode=False)
        finally:
            cli.console = shown_on
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def count_stock(self) -> None:
        """The count file, previewed, then applied: real stock becomes the counted figures."""
        count_file = self.work_dir / "inventaire.csv"
        count_file.write_text(COUNT_CSV, encoding="utf-8")
        self.stockpit("count", TENANT, str(count_file))
        self.stockpit("count", TENANT, str(count_file), "--apply")

    def deliver_and_receive(self, today: dt.date) -> None:
        orders = http("GET", f"{self.inventory}/orders")
        lamp = self.product_id("Lampe de bureau")
        order = next(o for o in orders if any(line["product_id"] == lamp for line in o["lines"]))
        http(
            "POST",
            f"{self.inventory}/orders/{order['order_id']}/delivery-notes",
            {"lines": [{"product_id": lamp, "quantity": "1"}]},
        )
        console.print("[green]✓[/green] delivery note: 1 desk lamp of 2 delivered to Marie Dupont")
        supplier = http("POST", f"{self.inventory}/suppliers", {"name": "Mobilier Durand SARL"})
        chair = self.product_id("Chaise pliante")
        purchase = http(
            "POST",
            f"{self.inventory}/purchases",
            {
                "supplier_id": supplier["supplier_id"],
                "lines": [
                    {
                        "product_id": chair,
                        "quantity": "20",
                        "unit_price_before_tax": "21.50",
                        "vat_rate": "FR_200",
                    }
                ],
            },
        )
        purchase = http(
            "POST",
            f"{self.inventory}/purchases/{purchase['purchase_id']}/receipts",
            {"lines": [{"product_id": chair, "quantity": "12"}], "received_on": today.isoformat()},
        )
        receipt = purchase["receipts"][-1]
        http(
            "POST",
            f"{self.inventory}/purchases/{purchase['purchase_id']}/receipts/"
            f"{receipt['receipt_id']}/send",
        )
        console.print(
            "[green]✓[/green] purchase of 20 chairs, 12 received, receipt sent to Pennylane"
        )

        def supplier_invoice() -> list[Any] | None:
            items: list[Any] = self.user.call("GET", "/supplier_invoices")["items"]
            return items or None

        wait_for("supplier invoice imported in Pennylane", supplier_invoice)

    def rename_on_both_sides(self) -> None:
        lamp = self.product_id("Lampe de bureau")
        http("PATCH", f"{self.inventory}/products/{lamp}", {"name": "Lampe LED de bureau"})
        table_id = self.seeded.products["Table basse"]
        self.user.call("PUT", f"/products/{table_id}", {"label": "Table basse en chêne"})
        lamp_id = self.seeded.products["Lampe de bureau"]
        wait_for(
            "Stockpit's rename written to Pennylane",
            lambda: (
                self.user.call("GET", f"/products/{lamp_id}")["label"] == "Lampe LED de bureau"
                or None
            ),
        )
        wait_for(
            "Pennylane's rename imported into Stockpit",
            lambda: (
                any(
                    product["name"] == "Table basse en chêne"
                    for product in http("GET", f"{self.inventory}/products")
                )
                or None
            ),
        )

    def show_results(self) -> None:
        stock = Table(title="Stock per product and location")
        for column in ("product", "location", "real", "reserved", "available", "incoming"):
            stock.add_column(column, justify="right" if column != "product" else "left")
        for row in http("GET", f"{self.inventory}/stock"):
            stock.add_row(
                row.get("product_name") or row["product_id"],
                row.get("location_name") or row["location_id"],
                *(_qty(row[k]) for k in ("real", "reserved", "available", "incoming")),
            )
        console.print(stock)
        written = Table(title="Written to Pennylane by Stockpit Sync")
        for column in ("what", "Pennylane record"):
            written.add_column(column)
        for invoice in self.user.call("GET", "/supplier_invoices")["items"]:
            written.add_row(
                "supplier invoice for the receipt",
                f"#{invoice['id']} {invoice.get('label') or ''} "
                f"{invoice.get('amount', invoice.get('currency_amount', ''))} €",
            )
        lamp = self.user.call("GET", f"/products/{self.seeded.products['Lampe de bureau']}")
        written.add_row("product renamed", f"#{lamp['id']} {lamp['label']}")
        console.print(written)

    def show_report(self) -> None:
        """`stockpit report demo`, as the shop owner runs it (a token for this tenant only)."""
        os.environ["STOCKPIT_INVENTORY_URL"] = self.system.url("inventory")
        os.environ["STOCKPIT_TOKEN"] = self.system.token(
            tenants=[TENANT], scopes=[Scope.STOCK_READ]
        )
        console.rule(f"$ stockpit report {TENANT}")
        cli.console = console
        cli.app(["report", TENANT, "--runs", "5"], standalone_mode=False)


def _qty(value: Any) -> str:
    return format(Decimal(str(value)).normalize(), "f")


def main() -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="stockpit-demo-"))
    config = SystemConfig(
        kafka_bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        database_url=os.environ["DATABASE_URL"],
        log_dir=log_dir,
        tokens=(TOKEN,),
        # The demo's identity provider: a key pair kept under .local/, where
        # `stockpit dev-token` finds it to mint tokens for the operator's command.
        auth_dir=Path(os.environ.get("STOCKPIT_LOCAL_AUTH_DIR", ".local/auth")),
    )
    console.rule("Stockpit Sync demo")
    console.print(f"service logs: {log_dir}")
    console.print(
        f"access tokens are signed with the local key in {config.authority.directory} "
        "(`stockpit dev-token --tenant demo --scope stock:read` mints one)"
    )
    started = time.monotonic()
    console.print("starting the sandbox and the three services…")
    with running_system(config) as system:
        console.print("[green]✓[/green] sandbox, inventory, outbound and poller ready")
        try:
            Demo(system, log_dir).run()
        except Exception as exc:
            console.print(f"[red]demo failed: {exc}[/red]")
            for name, process in system.services.items():
                console.print(f"[dim]--- {name} log tail ---\n{process.tail(10)}[/dim]")
            return 1
    console.print(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
