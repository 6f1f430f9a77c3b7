"""A modest, seeded workload through the whole system, and the state it must end in.

Fault drills run it while they break things (SIGKILLs, broker and database restarts, sandbox
faults). Each phase adds invoices in Pennylane (the sandbox's seed endpoint, as if the
accountant had finalized them) and makes Stockpit-side writes (renames sent to Pennylane, a
purchase received and its receipt sent); `expect_converged` then waits until the stock and
Pennylane's records are exactly what the workload implies.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stockpit_ops.probes import (
    Inventory,
    SandboxAdmin,
    connect,
    http,
    receive_and_send,
    rename_product,
    stock_matches,
    wait_until,
)
from stockpit_ops.system import RunningSystem


@dataclass
class Workload:
    system: RunningSystem
    tenant: str
    token: str
    rng: random.Random
    invoices_per_phase: int = 12
    received: dict[int, Decimal] = field(default_factory=dict)
    labels: dict[int, str] = field(default_factory=dict)
    receipts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sandbox = SandboxAdmin(self.system.sandbox_url)
        self.inventory = Inventory(self.system, self.tenant)

    def start(self) -> None:
        """Seed the company, connect the tenant and wait for its first import (no faults yet)."""
        self.sandbox.seed_invoices(
            self.token, count=self.invoices_per_phase, seed=self.rng.randrange(10**6),
            products=6, customers=3, max_lines=4, service_share=0.2,
        )  # fmt: skip
        connect(self.system, self.tenant, self.token)
        self.expect_converged(timeout_s=120)

    def add_invoices(self) -> None:
        """More finalized invoices in Pennylane, on the products and customers it has."""
        self.sandbox.seed_invoices(
            self.token, count=self.invoices_per_phase, seed=self.rng.randrange(10**6),
            products=0, customers=0, max_lines=4,
        )  # fmt: skip

    def stockpit_writes(self, phase: int) -> None:
        """A rename of a random stocked product, and a receipt sent to Pennylane."""
        stocked = sorted(self.sandbox.expected_stock(self.token))
        renamed = self.rng.choice(stocked)
        label = f"Produit renommé {phase}-{self.rng.randrange(1000)}"
        rename_product(self.inventory, self.inventory.product_id(renamed), label)
        self.labels[renamed] = label
        bought = self.rng.choice(stocked)
        quantity = self.rng.randint(1, 9)
        self.receipts.append(
            receive_and_send(
                self.inventory,
                self.inventory.product_id(bought),
                quantity,
                f"Fournisseur {phase}",
            )
        )
        self.received[bought] = self.received.get(bought, Decimal(0)) + quantity

    def run_phases(self, phases: int, fault: Callable[[int], None]) -> None:
        """Each phase: new invoices in Pennylane, writes in Stockpit, then `fault(phase)` while
        the system is still busy with them."""
        for phase in range(phases):
            self.add_invoices()
            self.stockpit_writes(phase)
            fault(phase)

    def expected_stock(self) -> dict[int, Decimal]:
        expected = self.sandbox.expected_stock(self.token)
        for product, quantity in self.received.items():
            expected[product] = expected.get(product, Decimal(0)) + quantity
        return {pid: qty for pid, qty in expected.items() if qty != 0}

    def expect_converged(self, timeout_s: float = 240) -> None:
        """Wait until stock and Pennylane are exactly what the workload implies."""
        wait_until(
            "stock equals the invoices and receipts",
            lambda: stock_matches(self.inventory, self.expected_stock()),
            timeout_s,
        )
        wait_until(
            "one supplier invoice per receipt and every rename in Pennylane",
            lambda: True if self.pennylane_problems() == [] else None,
            timeout_s,
        )

    def dead_letters(self) -> dict[str, list[str]]:
        """Reasons of every message a service gave up on (a healthy run has none)."""
        found: dict[str, list[str]] = {}
        for service in self.system.services:
            rows = http("GET", self.system.url(service) + "/operations/dead-letters")
            if rows:
                found[service] = [str(row["reason"]) for row in rows]
        return found

    def pennylane_problems(self) -> list[str]:
        """What differs between Pennylane's records and the workload's writes (empty: none)."""
        problems: list[str] = []
        supplier_invoices = self.sandbox.records(self.token, "supplier_invoices")
        if len(supplier_invoices) != len(self.receipts):
            problems.append(
                f"{len(supplier_invoices)} supplier invoices, {len(self.receipts)} sent"
            )
        writes = Counter(
            {
                (w["resource"], w["external_reference"]): w["count"]
                for w in self.sandbox.writes(self.token)
            }
        )
        repeated = [
            key for key, count in writes.items() if key[0] == "supplier_invoices" and count > 1
        ]
        if repeated:
            problems.append(f"supplier invoices written more than once: {repeated}")
        labels: dict[int, Any] = {
            p["id"]: p["label"] for p in self.sandbox.records(self.token, "products")
        }
        problems.extend(
            f"product {pid} is {labels.get(pid)!r}, expected {label!r}"
            for pid, label in self.labels.items()
            if labels.get(pid) != label
        )
        return problems
