"""A small French business in the Pennylane sandbox, entered as its accountant would.

Everything goes through Pennylane's public API, except the purchase order, which the public API
cannot create (the sandbox's admin surface does it, as Pennylane's web app would).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx

API = "/api/external/v2"


@dataclass
class SeededBusiness:
    """Pennylane ids of what was created, by the names the demo uses."""

    products: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)
    invoices: dict[str, int] = field(default_factory=dict)
    quote_id: int = 0
    purchase_order_id: int = 0


class PennylaneUser:
    """Public-API calls with one company's token (no client-side retries: a seed is scripted)."""

    def __init__(self, sandbox_url: str, token: str) -> None:
        self._root = sandbox_url
        self._token = token
        self._http = httpx.Client(
            base_url=sandbox_url + API,
            headers={"Authorization": f"Bearer {token}", "X-Use-2026-API-Changes": "true"},
            timeout=30,
        )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self._http.request(method, path, json=body, params=params or None)
        if response.status_code == 429:
            import time

            time.sleep(float(response.headers.get("retry-after", "1")))
            return self.call(method, path, body, **params)
        response.raise_for_status()
        return response.json() if response.content else None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, f"{self._root}/_sandbox/{self._token}{path}", json=body, timeout=30
        )
        response.raise_for_status()
        return response.json()

    def ledger_account_id(self, number: str) -> int:
        found = self.call(
            "GET",
            "/ledger_accounts",
            filter=f'[{{"field": "number", "operator": "eq", "value": "{number}"}}]',
        )
        return int(found["items"][0]["id"])

    def close(self) -> None:
        self._http.close()


def _lines(products: dict[str, int], *items: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"product_id": products[name], "quantity": float(qty)} for name, qty in items]


def seed_small_business(user: PennylaneUser, today: dt.date) -> SeededBusiness:
    """The catalog and customers, then today's documents."""
    seeded = seed_catalog(user)
    seed_documents(user, seeded, today)
    return seeded


def seed_catalog(user: PennylaneUser) -> SeededBusiness:
    """Products (three goods on 707, a service on 706) and two customers."""
    seeded = SeededBusiness()
    goods, services = user.ledger_account_id("707000"), user.ledger_account_id("706000")
    catalogue = [
        ("Chaise pliante", "CH-01", "45.00", goods),
        ("Table basse", "TB-02", "180.00", goods),
        ("Lampe de bureau", "LA-03", "39.90", goods),
        ("Installation sur site", "SRV-INST", "90.00", services),
    ]
    for label, reference, price, account in catalogue:
        product = user.call(
            "POST",
            "/products",
            {
                "label": label,
                "reference": reference,
                "price_before_tax": price,
                "vat_rate": "FR_200",
                "unit": "piece",
                "ledger_account_id": account,
            },
        )
        seeded.products[label] = product["id"]
    address = {
        "address": "12 rue de la Paix",
        "postal_code": "75002",
        "city": "Paris",
        "country_alpha2": "FR",
    }
    cafe = user.call(
        "POST",
        "/company_customers",
        {"name": "Café des Arts", "billing_address": address, "emails": ["compta@cafe.fr"]},
    )
    marie = user.call(
        "POST",
        "/individual_customers",
        {
            "first_name": "Marie",
            "last_name": "Dupont",
            "billing_address": address,
            "emails": ["marie@dupont.fr"],
        },
    )
    seeded.customers = {"Café des Arts": cafe["id"], "Marie Dupont": marie["id"]}
    return seeded


def seed_history(user: PennylaneUser, seeded: SeededBusiness, day: dt.date) -> int:
    """An invoice of `day` (before the shop connects): 3 chairs and a table. Its id."""
    p = seeded.products
    created = user.call(
        "POST",
        "/customer_invoices",
        {
            "customer_id": seeded.customers["Café des Arts"],
            "date": day.isoformat(),
            "deadline": (day + dt.timedelta(days=30)).isoformat(),
            "draft": False,
            "invoice_lines": _lines(p, ("Chaise pliante", "3"), ("Table basse", "1")),
        },
    )
    seeded.invoices["last month"] = created["id"]
    return int(created["id"])


def seed_documents(user: PennylaneUser, seeded: SeededBusiness, today: dt.date) -> None:
    """Today's documents: two invoices, a draft, a credit note, a quote with its purchase order
    and the invoice made from it."""
    p = seeded.products
    cafe, marie = (
        {"id": seeded.customers["Café des Arts"]},
        {"id": seeded.customers["Marie Dupont"]},
    )
    day, deadline = today.isoformat(), (today + dt.timedelta(days=30)).isoformat()

    def invoice(name: str, customer: int, *items: tuple[str, str], draft: bool = False) -> None:
        created = user.call(
            "POST",
            "/customer_invoices",
            {
                "customer_id": customer,
                "date": day,
                "deadline": deadline,
                "draft": draft,
                "invoice_lines": _lines(p, *items),
            },
        )
        seeded.invoices[name] = created["id"]

    invoice("F1", cafe["id"], ("Chaise pliante", "4"), ("Installation sur site", "1"))
    invoice("F2", marie["id"], ("Table basse", "1"), ("Lampe de bureau", "2"))
    invoice("draft", cafe["id"], ("Chaise pliante", "10"), draft=True)
    invoice("credit note", cafe["id"], ("Chaise pliante", "-1"))
    user.call(
        "POST",
        f"/customer_invoices/{seeded.invoices['F1']}/link_credit_note",
        {"credit_note_id": seeded.invoices["credit note"]},
    )
    quote = user.call(
        "POST",
        "/quotes",
        {
            "customer_id": cafe["id"],
            "date": day,
            "deadline": deadline,
            "invoice_lines": _lines(p, ("Table basse", "2")),
        },
    )
    seeded.quote_id = quote["id"]
    purchase_order = user.admin(
        "POST",
        "/commercial_documents",
        {
            "customer_id": cafe["id"],
            "date": day,
            "quote_id": quote["id"],
            "document_type": "purchasing_order",
            "invoice_lines": _lines(p, ("Table basse", "2")),
        },
    )
    seeded.purchase_order_id = purchase_order["id"]
    from_quote = user.call(
        "POST", "/customer_invoices/create_from_quote", {"quote_id": quote["id"], "draft": False}
    )
    seeded.invoices["F3 (from quote)"] = from_quote["id"]
