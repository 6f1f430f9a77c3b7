"""What Stockpit asks of inventory (its HTTP API): one frozen dataclass per command, handled by
a function of (command, unit of work) in `service_layer.handlers`. Pennylane's events are
commands too: `DocumentVersion` and the payloads of `stockpit_contracts`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from uuid import UUID

from inventory.domain.values import PostalAddress

# -- settings and locations ---------------------------------------------------------------


@dataclass(frozen=True)
class ChangeSettings:
    default_location_id: UUID | None = None
    import_products: bool | None = None
    import_services: bool | None = None
    delivery_notes_update_real_stock: bool | None = None
    restock_on_credit_note: bool | None = None
    sync_interval: timedelta | None = None


@dataclass(frozen=True)
class CreateLocation:
    name: str


@dataclass(frozen=True)
class ChangeLocation:
    location_id: UUID
    name: str | None = None
    active: bool | None = None


# -- products, customers, suppliers -------------------------------------------------------


@dataclass(frozen=True)
class CreateProduct:
    name: str
    sku: str | None
    is_service: bool = False


@dataclass(frozen=True)
class ChangeProduct:
    product_id: UUID
    name: str | None = None
    sku: str | None = None
    clear_sku: bool = False
    active: bool | None = None


@dataclass(frozen=True)
class DeleteProduct:
    product_id: UUID


@dataclass(frozen=True)
class MergeProducts:
    duplicate_id: UUID
    original_id: UUID


@dataclass(frozen=True)
class CreateCustomer:
    name: str
    emails: tuple[str, ...] = ()
    address: PostalAddress | None = None


@dataclass(frozen=True)
class ChangeCustomer:
    customer_id: UUID
    name: str | None = None
    emails: tuple[str, ...] | None = None
    address: PostalAddress | None = None


@dataclass(frozen=True)
class CreateSupplier:
    name: str
    emails: tuple[str, ...] = ()


# -- orders and returns -------------------------------------------------------------------


@dataclass(frozen=True)
class CreateOrder:
    lines: Sequence[tuple[UUID, Decimal]]
    customer_id: UUID | None = None
    location_id: UUID | None = None


@dataclass(frozen=True)
class Deliver:
    order_id: UUID
    lines: Mapping[UUID, Decimal]
    location_id: UUID | None = None


@dataclass(frozen=True)
class ArchiveOrder:
    order_id: UUID


@dataclass(frozen=True)
class CancelOrder:
    order_id: UUID


@dataclass(frozen=True)
class EditReturn:
    return_id: UUID
    quantities: Mapping[UUID, Decimal] | None = None
    restock: bool | None = None


@dataclass(frozen=True)
class RestockReturn:
    return_id: UUID


# -- purchases and receipts ---------------------------------------------------------------


@dataclass(frozen=True)
class PlacePurchase:
    supplier_id: UUID
    # product, quantity, unit price before tax, VAT rate
    lines: Sequence[tuple[UUID, Decimal, Decimal, str]]
    location_id: UUID | None = None


@dataclass(frozen=True)
class Receive:
    purchase_id: UUID
    lines: Mapping[UUID, Decimal]
    received_on: date
    location_id: UUID | None = None


@dataclass(frozen=True)
class ClosePurchase:
    purchase_id: UUID


@dataclass(frozen=True)
class SendReceipt:
    purchase_id: UUID
    receipt_id: UUID


# -- stock --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjust:
    """By a delta, or to a counted quantity: exactly one of them."""

    product_id: UUID
    location_id: UUID | None
    delta: Decimal | None
    counted: Decimal | None
    reason: str


@dataclass(frozen=True)
class TransferStock:
    product_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    quantity: Decimal


@dataclass(frozen=True)
class ImportCount:
    """A stock count as CSV: previewed, or applied when `apply`."""

    data: bytes
    apply: bool
    note: str = "stock count"


@dataclass(frozen=True)
class AcknowledgeProblem:
    problem_id: int
