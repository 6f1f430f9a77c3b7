"""Domain events: facts the domain reports; the service layer turns them into outbox messages.

Every event names its tenant. Events are plain frozen dataclasses with no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from inventory.domain.values import PennylaneId, PostalAddress, TenantId


@dataclass(frozen=True)
class DomainEvent:
    tenant_id: TenantId


@dataclass(frozen=True)
class StockChanged(DomainEvent):
    """Levels of one product at one location after one ledger entry, with that entry's deltas."""

    product_id: UUID
    location_id: UUID
    real: Decimal
    reserved: Decimal
    available: Decimal
    incoming: Decimal
    real_delta: Decimal
    reserved_delta: Decimal
    incoming_delta: Decimal
    cause: str
    ledger_entry_id: UUID


class StockMeasure(StrEnum):
    REAL = "real"
    AVAILABLE = "available"


@dataclass(frozen=True)
class NegativeStock(DomainEvent):
    """A movement left real or available stock below zero: allowed (rule 5), but reported."""

    product_id: UUID
    location_id: UUID
    measure: StockMeasure
    quantity: Decimal
    cause: str
    # What caused it ("invoice:123", a delivery note id…): the report names the document.
    reference: str | None = None


class ConflictReason(StrEnum):
    DELIVERED_EXCEEDS_ORDER = "delivered_exceeds_order"
    ORDER_CLOSED_IN_STOCKPIT = "order_closed_in_stockpit"
    RETURN_EDITED_IN_STOCKPIT = "return_edited_in_stockpit"
    NEGATIVE_DOCUMENT_QUANTITY = "negative_document_quantity"
    # A credit note credits more than its order still has to settle (rule 11).
    CREDIT_EXCEEDS_ORDER = "credit_exceeds_order"


@dataclass(frozen=True)
class Conflict(DomainEvent):
    """Pennylane and Stockpit disagree and the domain will not settle it alone."""

    reason: ConflictReason
    detail: str
    subject_kind: str
    subject_id: UUID
    product_id: UUID | None = None


@dataclass(frozen=True)
class UnknownReference(DomainEvent):
    """A Pennylane document points at a record this tenant does not have."""

    reference_kind: str
    pennylane_id: PennylaneId
    referenced_by: str


class CreatedBecause(StrEnum):
    IMPORTED = "imported"  # a Pennylane product appeared and the import settings take it
    NAMED_ON_DOCUMENT = "named_on_document"  # named on an imported document: always created
    CREATED_IN_STOCKPIT = "created_in_stockpit"


@dataclass(frozen=True)
class ProductCreated(DomainEvent):
    product_id: UUID
    pennylane_id: PennylaneId | None
    is_service: bool
    because: CreatedBecause


@dataclass(frozen=True)
class ProductChangedInStockpit(DomainEvent):
    """Name or SKU changed in Stockpit: Pennylane should follow. Never an echo of Pennylane."""

    product_id: UUID
    pennylane_id: PennylaneId
    name: str
    sku: str | None
    changed_at: datetime
    # What Stockpit last saw in Pennylane (None: not known), for "last change wins".
    pennylane_name: str | None = None
    pennylane_sku: str | None = None
    pennylane_updated_at: datetime | None = None


@dataclass(frozen=True)
class CustomerImported(DomainEvent):
    customer_id: UUID
    pennylane_id: PennylaneId


@dataclass(frozen=True)
class CustomerCreatedInStockpit(DomainEvent):
    """A Stockpit customer of an order created in Stockpit: Pennylane should create it."""

    customer_id: UUID
    name: str
    emails: tuple[str, ...]
    address: PostalAddress | None
    created_at: datetime


@dataclass(frozen=True)
class CustomerChangedInStockpit(DomainEvent):
    """Name or e-mail changed in Stockpit: Pennylane should follow. Never an echo of Pennylane.

    `pennylane_id` is None while Pennylane has not yet answered the creation request.
    """

    customer_id: UUID
    pennylane_id: PennylaneId | None
    name: str
    emails: tuple[str, ...]
    address: PostalAddress | None
    changed_at: datetime
    # What Stockpit last saw in Pennylane (None: not known), for "last change wins".
    pennylane_name: str | None = None
    pennylane_emails: tuple[str, ...] | None = None
    pennylane_updated_at: datetime | None = None


@dataclass(frozen=True)
class OrderCreated(DomainEvent):
    order_id: UUID
    from_pennylane: bool
    mode: str
    location_id: UUID
    customer_id: UUID | None


@dataclass(frozen=True)
class ReturnCreated(DomainEvent):
    return_id: UUID
    credit_note_pennylane_id: PennylaneId
    restock: bool
    location_id: UUID
    order_id: UUID | None


@dataclass(frozen=True)
class ReceiptLineToSend:
    product_id: UUID
    label: str
    quantity: Decimal
    unit_price_before_tax: Decimal
    vat_rate: str


@dataclass(frozen=True)
class ReceiptSendRequested(DomainEvent):
    """ "Send to Pennylane" on a purchase receipt: the outbound service makes a supplier invoice."""

    receipt_id: UUID
    purchase_id: UUID
    supplier_id: UUID
    supplier_name: str
    received_on: date
    lines: tuple[ReceiptLineToSend, ...]


@dataclass(frozen=True)
class LikelyDuplicate(DomainEvent):
    """A product imported from Pennylane has the SKU (or, failing that, the exact name) of an
    existing product: reported so a user can merge it (rule 15)."""

    product_id: UUID
    pennylane_id: PennylaneId | None
    original_id: UUID
    matched_on: str  # "sku" or "name"
    value: str
