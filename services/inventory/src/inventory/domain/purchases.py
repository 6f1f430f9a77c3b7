"""Purchases from suppliers and their receipts (partial allowed).

A purchase's effect: incoming += outstanding (ordered − received, never below zero) at the
purchase's location while it is open; real += received at each receipt's location. A receipt
may arrive at another location than the purchase's and may bring more than outstanding (the
extra is counted in real stock; incoming never goes negative because of it). Closing a purchase
releases what is still incoming. Receipts are sent to Pennylane only on demand, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid4

from inventory.domain.catalog import Location, Product, Supplier
from inventory.domain.errors import DomainError
from inventory.domain.events import DomainEvent, ReceiptLineToSend, ReceiptSendRequested
from inventory.domain.outcome import Outcome
from inventory.domain.stock import Cause, CauseKind, Effect, StockKey, StockMovement, settle
from inventory.domain.values import (
    ZERO,
    PennylaneId,
    TenantId,
    require_aware,
    require_positive,
    require_quantity,
)


class PurchaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class SendStatus(StrEnum):
    NOT_SENT = "not_sent"
    REQUESTED = "requested"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True)
class PurchaseLine:
    product_id: UUID
    label: str
    quantity: Decimal
    unit_price_before_tax: Decimal
    vat_rate: str


@dataclass
class Receipt:
    receipt_id: UUID
    location_id: UUID
    received_on: date
    lines: dict[UUID, Decimal]
    recorded_at: datetime
    send_status: SendStatus = SendStatus.NOT_SENT
    pennylane_invoice_id: PennylaneId | None = None
    send_failure: str | None = None


@dataclass
class Purchase:
    purchase_id: UUID
    tenant_id: TenantId
    supplier_id: UUID
    location_id: UUID
    placed_at: datetime
    lines: list[PurchaseLine]
    status: PurchaseStatus = PurchaseStatus.OPEN
    receipts: list[Receipt] = field(default_factory=list)
    applied: dict[StockKey, Effect] = field(default_factory=dict)

    @classmethod
    def place(
        cls,
        supplier: Supplier,
        location: Location,
        lines: Sequence[tuple[Product, Decimal, Decimal, str]],
        at: datetime,
    ) -> tuple[Purchase, Outcome]:
        """Lines are (product, quantity, unit price before tax, Pennylane VAT code)."""
        require_aware(at, "at")
        if not lines:
            raise DomainError("a purchase needs at least one line")
        if location.tenant_id != supplier.tenant_id or not location.active:
            raise DomainError("the purchase's location must be an active location of the tenant")
        seen: set[UUID] = set()
        purchase_lines: list[PurchaseLine] = []
        for product, quantity, unit_price, vat_rate in lines:
            require_positive(quantity, "purchased quantity")
            if require_quantity(unit_price, "unit price") < ZERO:
                raise DomainError("a unit price cannot be negative")
            if product.tenant_id != supplier.tenant_id or product.deleted:
                raise DomainError(f"product {product.name!r} cannot be purchased")
            if product.is_service:
                raise DomainError(f"{product.name!r} is a service: services carry no stock")
            if product.product_id in seen:
                raise DomainError(f"product {product.name!r} appears twice")
            seen.add(product.product_id)
            purchase_lines.append(
                PurchaseLine(product.product_id, product.name, quantity, unit_price, vat_rate)
            )
        purchase = cls(
            uuid4(),
            supplier.tenant_id,
            supplier.supplier_id,
            location.location_id,
            at,
            purchase_lines,
        )
        movements = purchase._settle(CauseKind.PURCHASE, str(purchase.purchase_id))
        return purchase, Outcome(movements=movements)

    def ordered_quantities(self) -> dict[UUID, Decimal]:
        return {line.product_id: line.quantity for line in self.lines}

    def received_quantities(self) -> dict[UUID, Decimal]:
        received: dict[UUID, Decimal] = {}
        for receipt in self.receipts:
            for product_id, quantity in receipt.lines.items():
                received[product_id] = received.get(product_id, ZERO) + quantity
        return received

    def outstanding_quantities(self) -> dict[UUID, Decimal]:
        received = self.received_quantities()
        return {
            product_id: max(quantity - received.get(product_id, ZERO), ZERO)
            for product_id, quantity in self.ordered_quantities().items()
        }

    def target_effect(self) -> dict[StockKey, Effect]:
        target: dict[StockKey, Effect] = {}
        for receipt in self.receipts:
            for product_id, quantity in receipt.lines.items():
                key = StockKey(product_id, receipt.location_id)
                target[key] = target.get(key, Effect()) + Effect(real=quantity)
        if self.status is PurchaseStatus.OPEN:
            for product_id, outstanding in self.outstanding_quantities().items():
                key = StockKey(product_id, self.location_id)
                target[key] = target.get(key, Effect()) + Effect(incoming=outstanding)
        return {key: effect for key, effect in target.items() if not effect.is_zero}

    def _settle(self, kind: CauseKind, reference: str) -> list[StockMovement]:
        return settle(
            self.applied,
            self.target_effect(),
            lambda _key: Cause(kind, self.purchase_id, reference),
        )

    def receive(
        self,
        lines: Mapping[UUID, Decimal],
        received_on: date,
        at: datetime,
        *,
        location: Location | None = None,
    ) -> tuple[Receipt, Outcome]:
        """Record a receipt (partial allowed) at `location` (default: the purchase's)."""
        require_aware(at, "at")
        if self.status is not PurchaseStatus.OPEN:
            raise DomainError("a closed purchase cannot receive goods")
        if not lines:
            raise DomainError("a receipt needs at least one line")
        if location is not None and (location.tenant_id != self.tenant_id or not location.active):
            raise DomainError("the receipt's location must be an active location of the tenant")
        ordered = self.ordered_quantities()
        for product_id, quantity in lines.items():
            require_positive(quantity, "received quantity")
            if product_id not in ordered:
                raise DomainError(f"product {product_id} is not on this purchase")
        receipt = Receipt(
            uuid4(),
            location.location_id if location else self.location_id,
            received_on,
            dict(lines),
            at,
        )
        self.receipts.append(receipt)
        movements = self._settle(CauseKind.RECEIPT, str(receipt.receipt_id))
        return receipt, Outcome(movements=movements)

    def close(self, at: datetime) -> Outcome:
        """Nothing more will come: what is still incoming is released."""
        require_aware(at, "at")
        if self.status is PurchaseStatus.CLOSED:
            raise DomainError("the purchase is already closed")
        self.status = PurchaseStatus.CLOSED
        return Outcome(movements=self._settle(CauseKind.PURCHASE_CLOSE, str(self.purchase_id)))

    def receipt(self, receipt_id: UUID) -> Receipt:
        for receipt in self.receipts:
            if receipt.receipt_id == receipt_id:
                return receipt
        raise DomainError(f"receipt {receipt_id} is not part of this purchase")

    def request_send(self, receipt_id: UUID, supplier: Supplier) -> list[DomainEvent]:
        """ "Send to Pennylane": asks once; again only after a failure. Never twice once sent."""
        if supplier.supplier_id != self.supplier_id:
            raise DomainError("that supplier is not this purchase's supplier")
        receipt = self.receipt(receipt_id)
        if receipt.send_status is SendStatus.SENT:
            raise DomainError("this receipt is already in Pennylane")
        if receipt.send_status is SendStatus.REQUESTED:
            return []
        receipt.send_status = SendStatus.REQUESTED
        receipt.send_failure = None
        by_product = {line.product_id: line for line in self.lines}
        return [
            ReceiptSendRequested(
                tenant_id=self.tenant_id,
                receipt_id=receipt.receipt_id,
                purchase_id=self.purchase_id,
                supplier_id=self.supplier_id,
                supplier_name=supplier.name,
                received_on=receipt.received_on,
                lines=tuple(
                    ReceiptLineToSend(
                        product_id=product_id,
                        label=by_product[product_id].label,
                        quantity=quantity,
                        unit_price_before_tax=by_product[product_id].unit_price_before_tax,
                        vat_rate=by_product[product_id].vat_rate,
                    )
                    for product_id, quantity in receipt.lines.items()
                ),
            )
        ]

    def mark_sent(self, receipt_id: UUID, pennylane_invoice_id: PennylaneId) -> None:
        """The outbound service reports the supplier invoice Pennylane created."""
        receipt = self.receipt(receipt_id)
        receipt.send_status = SendStatus.SENT
        receipt.pennylane_invoice_id = pennylane_invoice_id
        receipt.send_failure = None

    def mark_send_failed(self, receipt_id: UUID, reason: str) -> None:
        receipt = self.receipt(receipt_id)
        if receipt.send_status is SendStatus.SENT:
            return  # a late failure report of an earlier attempt; the invoice exists
        receipt.send_status = SendStatus.FAILED
        receipt.send_failure = reason
