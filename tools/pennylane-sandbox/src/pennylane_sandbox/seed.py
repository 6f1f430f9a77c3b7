"""Starting data of a company (a French chart of accounts) and bulk generated invoices."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from .store import Address, Customer, LedgerAccount, Line, Product, SalesDocument

# (number, label, vat_rate): the accounts a French company has from day one.
FRENCH_CHART: tuple[tuple[str, str, str], ...] = (
    ("101000", "Capital", ""),
    ("401000", "Fournisseurs", ""),
    ("411000", "Clients", ""),
    ("445660", "TVA déductible sur autres biens et services", "FR_200"),
    ("445710", "TVA collectée", "FR_200"),
    ("445711", "TVA collectée 20%", "FR_200"),
    ("445712", "TVA collectée 10%", "FR_100"),
    ("445713", "TVA collectée 5,5%", "FR_55"),
    ("512000", "Banque", ""),
    ("601000", "Achats stockés - Matières premières", "FR_200"),
    ("602000", "Achats stockés - Autres approvisionnements", "FR_200"),
    ("606000", "Achats non stockés de matières et fournitures", "FR_200"),
    ("607000", "Achats de marchandises", "FR_200"),
    ("701000", "Ventes de produits finis", "FR_200"),
    ("706000", "Prestations de services", "FR_200"),
    ("707000", "Ventes de marchandises", "FR_200"),
    ("708500", "Ports et frais accessoires facturés", "FR_200"),
    ("709000", "Rabais, remises et ristournes accordés", "FR_200"),
)

LETTERABLE_PREFIXES = ("401", "411")


def chart_of_accounts(next_id: list[int], now: dt.datetime) -> list[LedgerAccount]:
    """`next_id` holds pre-allocated ids, one per account of the chart."""
    return [
        LedgerAccount(
            id=account_id,
            number=number,
            label=label,
            vat_rate=vat_rate,
            country_alpha2="FR",
            enabled=True,
            letterable=number.startswith(LETTERABLE_PREFIXES),
            created_at=now,
            updated_at=now,
        )
        for account_id, (number, label, vat_rate) in zip(next_id, FRENCH_CHART, strict=True)
    ]


SEED_VAT_RATES = ("FR_200", "FR_200", "FR_200", "FR_100", "FR_55")


def seed_customer(customer_id: int, index: int, now: dt.datetime) -> Customer:
    address = Address(f"{index} rue du Commerce", "75015", "Paris", "FR")
    return Customer(
        id=customer_id,
        customer_type="company",
        name=f"Client {index}",
        external_reference=f"seed-customer-{customer_id}",
        billing_address=address,
        delivery_address=address,
        created_at=now,
        updated_at=now,
        emails=[f"client{index}@example.com"],
    )


def seed_product(
    product_id: int, index: int, rng: random.Random, ledger_account_id: int | None, now: dt.datetime
) -> Product:
    return Product(
        id=product_id,
        label=f"Produit {index}",
        description="",
        external_reference=f"seed-product-{product_id}",
        price_before_tax=Decimal(rng.randint(100, 50_000)) / 100,
        vat_rate=rng.choice(SEED_VAT_RATES),
        unit="piece",
        currency="EUR",
        reference=f"SKU-{index:05d}",
        ledger_account_id=ledger_account_id,
        created_at=now,
        updated_at=now,
    )


def seed_invoice_lines(
    products: list[Product],
    line_ids: list[int],
    rng: random.Random,
    now: dt.datetime,
    *,
    negative: bool,
) -> list[Line]:
    lines: list[Line] = []
    for line_id in line_ids:
        product = rng.choice(products)
        quantity = Decimal(rng.randint(1, 12))
        line = Line(
            id=line_id,
            label=product.label,
            description="",
            unit=product.unit,
            quantity=-quantity if negative else quantity,
            unit_price=product.price_before_tax,
            vat_rate=product.vat_rate,
            product_id=product.id,
            ledger_account_id=product.ledger_account_id,
            discount=None,
            section_rank=None,
            imputation_dates=None,
            created_at=now,
            updated_at=now,
        )
        line.reprice()
        lines.append(line)
    return lines


def seed_invoice(
    invoice_id: int,
    customer_id: int,
    lines: list[Line],
    invoice_date: dt.date,
    now: dt.datetime,
    *,
    draft: bool,
    number: str,
) -> SalesDocument:
    return SalesDocument(
        id=invoice_id,
        kind="customer_invoice",
        customer_id=customer_id,
        date=invoice_date,
        deadline=invoice_date + dt.timedelta(days=30),
        lines=lines,
        external_reference=f"seed-invoice-{invoice_id}",
        created_at=now,
        updated_at=now,
        number=number,
        draft=draft,
        finalized_at=None if draft else now,
    )
