"""The soak: a company holding 10,000 finalized invoices when its tenant connects.

The end-to-end soak test asserts what it must end in (the exact stock, one ledger entry per
invoice and stocked product naming exactly that invoice's lines, no dead letters) and the system
benchmark times it (documents per second from connecting to the exact stock). Both run the
whole system as processes (`stockpit_ops.system`).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    http,
    service_products,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import RunningSystem

SOAK_DOCUMENTS = 10_000
# A product's ledger page must hold every entry the soak gives it (about 350 each).
LEDGER_PAGE = 500  # entries per page (the API's largest); `http` reads every page


def seed_soak(sandbox: SandboxAdmin, token: str, documents: int = SOAK_DOCUMENTS) -> None:
    """The company's invoices: dated over the last months, 1-4 lines each on 60 products, about
    15 % of those services (account 706, no stock), 20 customers. Deterministic."""
    sandbox.seed_invoices(
        token, count=documents, seed=2024, products=60, customers=20,
        min_lines=1, max_lines=4, service_share=0.15,
    )  # fmt: skip


def connect_and_wait_for_stock(
    system: RunningSystem,
    inventory: Inventory,
    token: str,
    expected: Mapping[int, Decimal],
    *,
    sync_interval_s: int,
    timeout_s: float = 1800,
) -> float:
    """Connect the tenant and wait until its real stock equals `expected` exactly; return the
    seconds from the connection (its first sync) to that moment."""
    started = time.monotonic()
    connect(system, inventory.tenant, token, sync_interval_s=sync_interval_s)
    wait_until(
        f"the {SOAK_DOCUMENTS} documents reached the stock",
        lambda: stock_matches(inventory, expected),
        timeout_s=timeout_s,
    )
    return time.monotonic() - started


@dataclass(frozen=True)
class LedgerEntry:
    reference: str | None
    delta_real: Decimal
    lines: tuple[int, ...]


def ledger_entries(inventory: Inventory) -> dict[int, list[LedgerEntry]]:
    """Every ledger entry of the tenant's products linked to Pennylane, by Pennylane id."""
    entries: dict[int, list[LedgerEntry]] = {}
    for product in inventory.products():
        if product["pennylane_id"] is None:
            continue
        newest_first = http(
            "GET",
            f"{inventory.url}/products/{product['product_id']}/ledger",
            limit=LEDGER_PAGE,
        )
        rows = list(reversed(newest_first))
        entries[int(product["pennylane_id"])] = [
            LedgerEntry(
                reference=row["reference"],
                delta_real=Decimal(str(row["delta_real"])),
                lines=tuple(sorted(int(line) for line in (row["lines"] or "").split(",") if line)),
            )
            for row in rows
        ]
    return entries


def expected_ledger(
    invoices: Iterable[Mapping[str, Any]],
    products: Iterable[Mapping[str, Any]],
    ledger_accounts: Iterable[Mapping[str, Any]],
) -> dict[int, list[LedgerEntry]]:
    """One entry per finalized invoice and stocked product it sells: minus the quantity of its
    lines on that product, naming those lines (drafts, credit notes and services move none)."""
    services = service_products(products, ledger_accounts)
    ledger: dict[int, list[LedgerEntry]] = defaultdict(list)
    for invoice in invoices:
        if invoice["draft"] or Decimal(str(invoice["amount"])) < 0:
            continue
        lines: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
        for line in invoice["invoice_lines_items"]:
            product = line.get("product")
            if product is not None and product["id"] not in services:
                lines[product["id"]].append(line)
        for product_id, product_lines in lines.items():
            quantity = sum((Decimal(str(line["quantity"])) for line in product_lines), Decimal(0))
            ledger[product_id].append(
                LedgerEntry(
                    reference=f"invoice:{invoice['id']}",
                    delta_real=-quantity,
                    lines=tuple(sorted(int(line["id"]) for line in product_lines)),
                )
            )
    return dict(ledger)


def ledger_differences(
    expected: Mapping[int, list[LedgerEntry]], actual: Mapping[int, list[LedgerEntry]]
) -> list[str]:
    """What differs between two ledgers, compared as multisets of entries per product (empty:
    none). An entry twice, one missing or one with other lines or quantity all show up."""
    differences: list[str] = []
    for product_id in sorted(set(expected) | set(actual)):
        wanted = Counter(expected.get(product_id, []))
        found = Counter(actual.get(product_id, []))
        for entry, count in (found - wanted).items():
            differences.append(f"product {product_id}: unexpected {count} × {entry}")
        for entry, count in (wanted - found).items():
            differences.append(f"product {product_id}: missing {count} × {entry}")
    return differences
