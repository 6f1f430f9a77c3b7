"""The stock rules' hard cases over the whole system (sandbox, Kafka, PostgreSQL, the three
services as processes): credit notes against orders in delivery-note mode (rule 10), credit
notes after a cancel and several credit notes of one invoice (rule 11), products moved between
goods and services after their documents were applied (rule 12).

Everything goes through Pennylane's public API (the sandbox) and Stockpit's HTTP API; each test
is a tenant of its own (a sandbox company of its own) on one shared running system.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from stockpit_ops.pennylane_seed import PennylaneUser
from stockpit_ops.probes import Inventory, connect, http, wait_until
from stockpit_ops.system import RunningSystem, SystemConfig, running_system

# The tests share one running system (module-scoped): under pytest-xdist they run on one worker
# (tests/conftest.py, ONE_WORKER_MODULES), so the system starts once.
pytestmark = pytest.mark.e2e

TOKENS = {
    "settle": "settle-company-token",
    "cancel": "cancel-company-token",
    "reclass": "reclass-company-token",
}
ZERO = Decimal(0)


@pytest.fixture(scope="module")
def system(
    kafka_bootstrap_servers: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    config = SystemConfig(
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        database_url=database_url,
        log_dir=tmp_path_factory.mktemp("stock-rules"),
        tokens=tuple(TOKENS.values()),
    )
    with running_system(config) as running:
        yield running


class Company:
    """One tenant: its Pennylane company (public API) and its Stockpit side (HTTP API)."""

    def __init__(self, system: RunningSystem, tenant: str) -> None:
        self.system = system
        self.tenant = tenant
        self.pennylane = PennylaneUser(system.sandbox_url, TOKENS[tenant])
        self.inventory = Inventory(system, tenant)
        self.today = dt.datetime.now(dt.UTC).date()
        address = {
            "address": "12 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country_alpha2": "FR",
        }
        customer = {"name": f"Client {tenant}", "billing_address": address}
        self.customer_id = int(self.pennylane.call("POST", "/company_customers", customer)["id"])

    # -- Pennylane --------------------------------------------------------------------------

    def account(self, number: str) -> int:
        return self.pennylane.ledger_account_id(number)

    def product(self, label: str, account: str) -> int:
        body = {
            "label": label,
            "price_before_tax": "10.00",
            "vat_rate": "FR_200",
            "unit": "piece",
            "ledger_account_id": self.account(account),
        }
        return int(self.pennylane.call("POST", "/products", body)["id"])

    def move_product(self, product: int, account: str) -> None:
        """Book the product on another account (707 goods ⇄ 706 services)."""
        body = {"ledger_account_id": self.account(account)}
        self.pennylane.call("PUT", f"/products/{product}", body)

    def invoice(self, *lines: tuple[int, int]) -> int:
        """A finalized invoice (a credit note when the quantities are negative)."""
        body = {
            "customer_id": self.customer_id,
            "date": self.today.isoformat(),
            "deadline": (self.today + dt.timedelta(days=30)).isoformat(),
            "draft": False,
            "invoice_lines": [
                {"product_id": product, "quantity": float(quantity)} for product, quantity in lines
            ],
        }
        return int(self.pennylane.call("POST", "/customer_invoices", body)["id"])

    def credit_note(self, invoice: int, *lines: tuple[int, int]) -> int:
        """A credit note of `lines` (positive quantities credited) linked to `invoice`."""
        credit_note = self.invoice(*((product, -quantity) for product, quantity in lines))
        self.pennylane.call(
            "POST",
            f"/customer_invoices/{invoice}/link_credit_note",
            {"credit_note_id": credit_note},
        )
        return credit_note

    def annotate(self, invoice: int, label: str) -> None:
        """The one kind of edit a finalized invoice takes: a new version, same lines."""
        self.pennylane.call("PUT", f"/customer_invoices/{invoice}", {"label": label})

    # -- Stockpit ---------------------------------------------------------------------------

    def settings(self, **values: Any) -> None:
        http("PUT", f"{self.inventory.url}/settings", values)

    def connect(self) -> None:
        connect(self.system, self.tenant, TOKENS[self.tenant])

    def stock(self, product: int) -> tuple[Decimal, Decimal]:
        """(real, reserved) of a Pennylane product, over every location."""
        real, reserved = ZERO, ZERO
        for row in self.inventory.stock_rows():
            if row["pennylane_product_id"] == product:
                real += Decimal(str(row["real"]))
                reserved += Decimal(str(row["reserved"]))
        return real, reserved

    def wait_stock(self, product: int, expected: tuple[int, int]) -> None:
        wanted = (Decimal(expected[0]), Decimal(expected[1]))
        wait_until(
            f"{self.tenant}: product {product} at (real, reserved) {expected}",
            lambda: True if self.stock(product) == wanted else None,
        )

    def order_of(self, invoice: int) -> dict[str, Any]:
        for order in http("GET", f"{self.inventory.url}/orders"):
            if f"invoice:{invoice}" in order["documents"]:
                return dict(order)
        raise LookupError(f"no order holds invoice {invoice}")

    def wait_settled(self, *credit_notes: int) -> None:
        """Until each credit note's return exists and is attached to its invoice's order (the
        linked version was applied: its effect is final)."""

        def settled() -> bool | None:
            returns = http("GET", f"{self.inventory.url}/returns")
            attached = {r["credit_note_id"] for r in returns if r["order_id"] is not None}
            return True if set(credit_notes) <= attached else None

        wait_until(f"{self.tenant}: credit notes {credit_notes} settled", settled)

    def product_id(self, product: int) -> str:
        return self.inventory.product_id(product)


def test_a_credit_note_settles_an_order_in_delivery_note_mode_first(system: RunningSystem) -> None:
    """Rule 10, "delivery notes update real stock" and "restock on credit note" on: a credit of
    undelivered units releases their reservation and restocks nothing; only the part beyond
    what is undelivered is returned goods, restocked."""
    company = Company(system, "settle")
    chair, lamp = company.product("Chaise", "707000"), company.product("Lampe", "707000")
    company.settings(delivery_notes_update_real_stock=True, restock_on_credit_note=True)
    f1, f2 = company.invoice((chair, 5)), company.invoice((lamp, 5))
    company.connect()
    company.wait_stock(chair, (0, 5))
    company.wait_stock(lamp, (0, 5))
    order = company.order_of(f2)
    http(
        "POST",
        f"{company.inventory.url}/orders/{order['order_id']}/delivery-notes",
        {"lines": [{"product_id": company.product_id(lamp), "quantity": "3"}]},
    )
    assert company.stock(lamp) == (Decimal(-3), Decimal(2))

    credits = company.credit_note(f1, (chair, 5)), company.credit_note(f2, (lamp, 4))
    company.wait_settled(*credits)
    # Chairs: all 5 undelivered, the reservation is released, nothing comes back.
    assert company.stock(chair) == (ZERO, ZERO)
    # Lamps: 2 undelivered released, 2 of the 3 delivered come back.
    assert company.stock(lamp) == (Decimal(-1), ZERO)
    lamp_line = next(line for line in company.order_of(f2)["lines"])
    assert Decimal(str(lamp_line["remaining"])) == ZERO


def test_a_return_never_puts_back_more_than_its_order_has_out(system: RunningSystem) -> None:
    """Rule 11, restock on: a credit note after the order was cancelled in Stockpit moves
    nothing; two credit notes of one invoice restock at most what it took out."""
    company = Company(system, "cancel")
    chair, lamp = company.product("Chaise", "707000"), company.product("Lampe", "707000")
    company.settings(restock_on_credit_note=True)
    f1, f2 = company.invoice((chair, 5)), company.invoice((lamp, 5))
    company.connect()
    company.wait_stock(chair, (-5, 0))
    company.wait_stock(lamp, (-5, 0))
    order = company.order_of(f1)
    http("POST", f"{company.inventory.url}/orders/{order['order_id']}/cancel")
    assert company.stock(chair) == (ZERO, ZERO)

    credits = (
        company.credit_note(f1, (chair, 5)),
        company.credit_note(f2, (lamp, 3)),
        company.credit_note(f2, (lamp, 4)),
    )
    company.wait_settled(*credits)
    returns = http("GET", f"{company.inventory.url}/returns")
    assert {r["credit_note_id"] for r in returns} >= set(credits), "every credit note a return"
    assert company.stock(chair) == (ZERO, ZERO)
    assert company.stock(lamp) == (ZERO, ZERO), "3 + 4 credited, 5 taken out: 5 back"


def test_moving_a_product_between_goods_and_services_keeps_past_stock(
    system: RunningSystem,
) -> None:
    """Rule 12: documents already applied keep the goods/service decision made then, through
    later versions read after the product moved; new documents follow the new account; the
    leftover stock of a product now a service can still be adjusted."""
    company = Company(system, "reclass")
    chair = company.product("Chaise", "707000")
    setup = company.product("Installation", "706000")
    marker = company.product("Témoin", "707000")
    f1 = company.invoice((chair, 5), (setup, 2))
    company.connect()
    company.wait_stock(chair, (-5, 0))

    company.move_product(chair, "706000")
    company.move_product(setup, "707000")
    company.annotate(f1, "Livré en deux fois")  # a new version of f1, read after the moves
    company.invoice((marker, 1))  # applied after that version (one tenant, one partition)
    company.wait_stock(marker, (-1, 0))
    wait_until(
        "the chair is a service in Stockpit",
        lambda: (
            True
            if any(
                p["pennylane_id"] == chair and p["is_service"] for p in company.inventory.products()
            )
            else None
        ),
    )
    assert company.stock(chair) == (Decimal(-5), ZERO), "not reversed by the later version"
    assert company.stock(setup) == (ZERO, ZERO), "not replayed as goods"

    company.invoice((chair, 2), (setup, 1))  # new documents follow the new accounts
    company.invoice((marker, 1))
    company.wait_stock(marker, (-2, 0))
    assert company.stock(chair) == (Decimal(-5), ZERO)
    assert company.stock(setup) == (Decimal(-1), ZERO)

    http(
        "POST",
        f"{company.inventory.url}/adjustments",
        {"product_id": company.product_id(chair), "delta": "5", "reason": "reliquat"},
    )
    assert company.stock(chair) == (ZERO, ZERO)
