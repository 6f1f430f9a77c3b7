"""Request and response models of the HTTP API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from stockpit_contracts.payloads.connections import MAX_SYNC_INTERVAL_S, MIN_SYNC_INTERVAL_S

from inventory.domain import report
from inventory.domain.catalog import Customer, Location, Product, Supplier
from inventory.domain.documents import SourceDocument
from inventory.domain.orders import Order
from inventory.domain.purchases import Purchase
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.values import PostalAddress

Quantity = Annotated[
    Decimal, Field(ge=Decimal(-1_000_000_000), le=Decimal(1_000_000_000), decimal_places=6)
]
# Bounds of Pennylane's own fields where it has them, else of common practice: a name or label
# ≤ 255 characters, an e-mail address ≤ 254 (RFC 5321), a reference (SKU) ≤ 255.
# Control characters (NUL above all, which PostgreSQL text refuses) have no place in a name.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Name = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE)]
Email = Annotated[
    str,
    Field(min_length=3, max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+$"),
]
Sku = Annotated[str, Field(min_length=1, max_length=255, pattern=PRINTABLE)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SettingsOut(BaseModel):
    default_location_id: UUID | None = Field(
        description='none until the tenant\'s first change creates its "Principal" location'
    )
    import_products: bool
    import_services: bool
    delivery_notes_update_real_stock: bool
    restock_on_credit_note: bool
    sync_interval_seconds: int

    @classmethod
    def of(cls, settings: TenantSettings | None) -> SettingsOut:
        if settings is None:  # never changed: the defaults, nothing stored yet
            defaults = cls.of(TenantSettings("defaults", UUID(int=0)))
            return defaults.model_copy(update={"default_location_id": None})
        return cls(
            default_location_id=settings.default_location_id,
            import_products=settings.import_products,
            import_services=settings.import_services,
            delivery_notes_update_real_stock=settings.delivery_notes_update_real_stock,
            restock_on_credit_note=settings.restock_on_credit_note,
            sync_interval_seconds=int(settings.sync_interval.total_seconds()),
        )


class SettingsIn(Request):
    """Only the fields given change. The stock mode applies to orders created afterwards."""

    default_location_id: UUID | None = None
    import_products: bool | None = None
    import_services: bool | None = None
    delivery_notes_update_real_stock: bool | None = None
    restock_on_credit_note: bool | None = None
    # Bounded here so an absurd figure (1e20) is a 422, never an overflow.
    sync_interval_seconds: int | None = Field(
        default=None, strict=True, ge=MIN_SYNC_INTERVAL_S, le=MAX_SYNC_INTERVAL_S
    )


class LocationOut(BaseModel):
    location_id: UUID
    name: str
    active: bool

    @classmethod
    def of(cls, location: Location) -> LocationOut:
        return cls(location_id=location.location_id, name=location.name, active=location.active)


class LocationIn(Request):
    name: Name


class LocationChange(Request):
    name: Name | None = None
    active: bool | None = None


class ProductOut(BaseModel):
    product_id: UUID
    name: str
    sku: str | None
    is_service: bool
    pennylane_id: int | None
    active: bool
    deleted: bool
    likely_duplicate_of: UUID | None = Field(
        default=None,
        description="imported from Pennylane with this product's SKU (or exact name): merge it"
        " with POST .../products/{product_id}/merge-into/{likely_duplicate_of}",
    )
    merged_into: UUID | None = None

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            product_id=product.product_id,
            name=product.name,
            sku=product.sku,
            is_service=product.is_service,
            pennylane_id=product.pennylane_id,
            active=product.active,
            deleted=product.deleted,
            likely_duplicate_of=product.likely_duplicate_of,
            merged_into=product.merged_into,
        )


class MergeOut(BaseModel):
    original: ProductOut
    duplicate: ProductOut


class ProductIn(Request):
    name: Name
    sku: Sku | None = None
    is_service: bool = False


class ProductChangeIn(Request):
    """Rename, change or clear the SKU (Pennylane follows when linked), (de)activate."""

    name: Name | None = None
    sku: Sku | None = None
    clear_sku: bool = False
    active: bool | None = None


class AddressModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(min_length=1, max_length=255, pattern=PRINTABLE)
    postal_code: str = Field(min_length=1, max_length=20, pattern=PRINTABLE)
    city: str = Field(min_length=1, max_length=255, pattern=PRINTABLE)
    country_alpha2: str = Field(pattern=r"^[A-Z]{2}$")

    def to_domain(self) -> PostalAddress:
        return PostalAddress(self.address, self.postal_code, self.city, self.country_alpha2)


class CustomerOut(BaseModel):
    customer_id: UUID
    name: str
    emails: list[str]
    address: AddressModel | None
    pennylane_id: int | None
    pennylane_creation_requested: bool

    @classmethod
    def of(cls, customer: Customer) -> CustomerOut:
        address = customer.address
        return cls(
            customer_id=customer.customer_id,
            name=customer.name,
            emails=list(customer.emails),
            address=AddressModel(
                address=address.address,
                postal_code=address.postal_code,
                city=address.city,
                country_alpha2=address.country_alpha2,
            )
            if address
            else None,
            pennylane_id=customer.pennylane_id,
            pennylane_creation_requested=customer.pennylane_creation_requested,
        )


class CustomerIn(Request):
    name: Name
    emails: list[Email] = Field(default_factory=list, max_length=20)
    address: AddressModel | None = None


class CustomerChangeIn(Request):
    name: Name | None = None
    emails: list[Email] | None = Field(default=None, max_length=20)
    address: AddressModel | None = None


class SupplierOut(BaseModel):
    supplier_id: UUID
    name: str
    emails: list[str]

    @classmethod
    def of(cls, supplier: Supplier) -> SupplierOut:
        return cls(
            supplier_id=supplier.supplier_id, name=supplier.name, emails=list(supplier.emails)
        )


class SupplierIn(Request):
    name: Name
    emails: list[Email] = Field(default_factory=list, max_length=20)


class LineIn(Request):
    product_id: UUID
    quantity: Quantity


class OrderIn(Request):
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    customer_id: UUID | None = None
    location_id: UUID | None = None


class DeliveryNoteIn(Request):
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    location_id: UUID | None = None


class OrderLineOut(BaseModel):
    product_id: UUID
    ordered: Decimal
    delivered: Decimal
    remaining: Decimal


class DocumentOut(BaseModel):
    """A Pennylane document as a person knows it: its number and date."""

    reference: str = Field(description='kind and Pennylane id, e.g. "invoice:123"')
    kind: str
    pennylane_id: str
    number: str | None = Field(description="Pennylane's number, e.g. F-2026-0042")
    issued_on: date | None
    label: str = Field(description='e.g. "invoice F-2026-0042 of 2026-11-02"')

    @classmethod
    def of(cls, label: report.DocumentLabel) -> DocumentOut:
        return cls(
            reference=label.reference,
            kind=label.kind,
            pennylane_id=label.pennylane_id,
            number=label.number,
            issued_on=label.issued_on,
            label=label.describe(),
        )

    @classmethod
    def of_source(cls, source: SourceDocument) -> DocumentOut:
        return cls.of(report.source_label(source))


class DeliveryNoteOut(BaseModel):
    delivery_note_id: UUID
    number: str = Field(description="Stockpit's delivery note number (bon de livraison)")
    location_id: UUID
    delivered_at: datetime
    lines: list[LineIn]


class OrderOut(BaseModel):
    order_id: UUID
    status: str
    from_pennylane: bool
    mode: str | None
    location_id: UUID | None
    customer_id: UUID | None
    quote_id: int | None
    documents: list[str]
    document_details: list[DocumentOut] = Field(
        description="the Pennylane documents behind the order, with their numbers and dates"
    )
    delivery_state: Literal["not_delivered", "partially_delivered", "delivered"]
    lines: list[OrderLineOut]
    delivery_notes: list[DeliveryNoteOut]

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        ordered = order.ordered_quantities()
        delivered = order.delivered_quantities()
        # Units a credit note released (rule 10) are no longer to deliver.
        remaining = order.remaining_quantities()
        lines = [
            OrderLineOut(
                product_id=product_id,
                ordered=ordered.get(product_id, Decimal(0)),
                delivered=delivered.get(product_id, Decimal(0)),
                remaining=remaining.get(product_id, Decimal(0)),
            )
            for product_id in sorted(set(ordered) | set(delivered))
        ]
        if not delivered:
            state: Literal["not_delivered", "partially_delivered", "delivered"] = "not_delivered"
        elif any(line.remaining > 0 for line in lines):
            state = "partially_delivered"
        else:
            state = "delivered"
        return cls(
            order_id=order.order_id,
            status=order.status.value,
            from_pennylane=order.from_pennylane,
            mode=order.mode.value if order.mode else None,
            location_id=order.location_id,
            customer_id=order.customer_id,
            quote_id=order.quote_id,
            documents=sorted(order.sources),
            document_details=[
                DocumentOut.of_source(order.sources[reference])
                for reference in sorted(order.sources)
            ],
            delivery_state=state,
            lines=lines,
            delivery_notes=[
                DeliveryNoteOut(
                    delivery_note_id=note.delivery_note_id,
                    number=report.delivery_note_number(note.delivery_note_id),
                    location_id=note.location_id,
                    delivered_at=note.delivered_at,
                    lines=[LineIn(product_id=p, quantity=q) for p, q in note.lines.items()],
                )
                for note in order.deliveries
            ],
        )


class ReturnOut(BaseModel):
    return_id: UUID
    credit_note_id: int
    document: DocumentOut | None = Field(description="the credit note: number and date")
    status: str
    restock: bool | None
    location_id: UUID | None
    order_id: UUID | None
    customer_id: UUID | None
    edited_in_stockpit: bool
    lines: list[LineIn]

    @classmethod
    def of(cls, return_: Return) -> ReturnOut:
        return cls(
            return_id=return_.return_id,
            credit_note_id=return_.credit_note_id,
            document=DocumentOut.of_source(return_.source) if return_.source else None,
            status=return_.status.value,
            restock=return_.restock,
            location_id=return_.location_id,
            order_id=return_.order_id,
            customer_id=return_.customer_id,
            edited_in_stockpit=return_.edited_in_stockpit,
            lines=[LineIn(product_id=p, quantity=q) for p, q in return_.quantities.items()],
        )


class ReturnChangeIn(Request):
    """New returned quantities (a product at 0 is removed) and/or whether it restocks."""

    lines: list[LineIn] | None = Field(default=None, max_length=1000)
    restock: bool | None = None


class PurchaseLineIn(Request):
    product_id: UUID
    quantity: Quantity
    unit_price_before_tax: Quantity
    vat_rate: str = Field(default="FR_200", min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_]+$")


class PurchaseIn(Request):
    supplier_id: UUID
    location_id: UUID | None = None
    lines: list[PurchaseLineIn] = Field(min_length=1, max_length=1000)


class ReceiptIn(Request):
    lines: list[LineIn] = Field(min_length=1, max_length=1000)
    received_on: date
    location_id: UUID | None = None


class ReceiptOut(BaseModel):
    receipt_id: UUID
    number: str = Field(description="Stockpit's receipt number (bon de réception)")
    location_id: UUID
    received_on: date
    lines: list[LineIn]
    send_status: str
    pennylane_invoice_id: int | None
    send_failure: str | None


class PurchaseOut(BaseModel):
    purchase_id: UUID
    supplier_id: UUID
    location_id: UUID
    status: str
    lines: list[PurchaseLineIn]
    outstanding: list[LineIn]
    receipts: list[ReceiptOut]

    @classmethod
    def of(cls, purchase: Purchase) -> PurchaseOut:
        return cls(
            purchase_id=purchase.purchase_id,
            supplier_id=purchase.supplier_id,
            location_id=purchase.location_id,
            status=purchase.status.value,
            lines=[
                PurchaseLineIn(
                    product_id=line.product_id,
                    quantity=line.quantity,
                    unit_price_before_tax=line.unit_price_before_tax,
                    vat_rate=line.vat_rate,
                )
                for line in purchase.lines
            ],
            outstanding=[
                LineIn(product_id=p, quantity=q)
                for p, q in purchase.outstanding_quantities().items()
            ],
            receipts=[
                ReceiptOut(
                    receipt_id=receipt.receipt_id,
                    number=report.receipt_number(receipt.receipt_id),
                    location_id=receipt.location_id,
                    received_on=receipt.received_on,
                    lines=[LineIn(product_id=p, quantity=q) for p, q in receipt.lines.items()],
                    send_status=receipt.send_status.value,
                    pennylane_invoice_id=receipt.pennylane_invoice_id,
                    send_failure=receipt.send_failure,
                )
                for receipt in purchase.receipts
            ],
        )


class AdjustmentIn(Request):
    """Either `delta` (units added, negative to remove) or `counted` (an inventory count)."""

    product_id: UUID
    location_id: UUID | None = None
    delta: Quantity | None = None
    counted: Quantity | None = None
    reason: Name


class AdjustmentOut(BaseModel):
    adjustment_id: UUID
    real_delta: Decimal


class TransferIn(Request):
    product_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    quantity: Quantity


class TransferOut(BaseModel):
    transfer_id: UUID


class StockRow(BaseModel):
    product_id: str
    pennylane_product_id: int | None = None
    product_name: str | None = None
    location_id: str
    location_name: str | None = None
    real: Decimal
    reserved: Decimal
    available: Decimal
    incoming: Decimal


class LedgerRow(BaseModel):
    entry_id: UUID | None
    location_id: str
    location_name: str | None
    delta_real: Decimal
    delta_reserved: Decimal
    delta_incoming: Decimal
    cause: str
    cause_kind: str | None
    subject_id: str | None
    reference: str | None
    version: str | None
    lines: str | None
    note: str | None
    recorded_at: datetime
    document: DocumentOut | None = Field(
        default=None, description="the Pennylane document behind the entry: number and date"
    )
    stockpit_number: str | None = Field(
        default=None, description="the delivery note or receipt number, for those entries"
    )


class Figures(BaseModel):
    real: Decimal
    reserved: Decimal
    incoming: Decimal


class MismatchOut(BaseModel):
    product_id: str
    location_id: str
    level: Figures
    ledger: Figures


class ReconciliationOut(BaseModel):
    balanced: bool
    mismatches: list[MismatchOut]


class WriteStatusOut(BaseModel):
    entity_kind: str
    entity_id: str
    status: str
    pennylane_id: int | None
    reason: str | None
    retryable: bool | None
    reported_at: datetime
