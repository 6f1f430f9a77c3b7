"""Pennylane records → the events the poller publishes. Pure: no I/O, no clock.

Lines name a product and documents a customer by id only; the poller keeps small snapshots of
both (`ProductSnapshot`, `CustomerSnapshot`) so that every event carries what inventory needs to
create an unknown product or customer without asking Pennylane itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stockpit_contracts.payloads.catalog import (
    CustomerUpserted,
    PostalAddress,
    ProductUpserted,
)
from stockpit_contracts.payloads.documents import (
    CustomerRef,
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)
from stockpit_pennylane.client.models import (
    CommercialDocument,
    CompanyCustomer,
    CustomerInvoice,
    IndividualCustomer,
    Product,
)
from stockpit_pennylane.client.models import DocumentLine as PennylaneLine

PURCHASE_ORDER_TYPE = "purchasing_order"
CREDIT_NOTE_STATUS = "credit_note"


@dataclass(frozen=True, slots=True)
class ProductSnapshot:
    pennylane_id: int
    label: str
    reference: str | None
    ledger_account_number: str | None
    unit: str | None

    def ref(self) -> ProductRef:
        return ProductRef(
            pennylane_id=self.pennylane_id,
            label=self.label,
            reference=self.reference,
            ledger_account_number=self.ledger_account_number,
            unit=self.unit,
        )


@dataclass(frozen=True, slots=True)
class CustomerSnapshot:
    pennylane_id: int
    name: str
    kind: str
    emails: tuple[str, ...]

    def ref(self) -> CustomerRef:
        kind = self.kind if self.kind in ("company", "individual") else None
        return CustomerRef(
            pennylane_id=self.pennylane_id,
            name=self.name,
            kind=kind,
            emails=self.emails,
        )


def invoice_kind(invoice: CustomerInvoice) -> DocumentKind:
    """Credit notes come from `/customer_invoices` too (NOTES §6): Pennylane marks them with the
    `credit_note` status once finalized, links them to the invoice they credit, and a credit note is
    created with negative amounts, which is the only sign a draft credit note carries."""
    if (
        invoice.status == CREDIT_NOTE_STATUS
        or invoice.credited_invoice is not None
        or invoice.currency_amount < 0
    ):
        return DocumentKind.CREDIT_NOTE
    return DocumentKind.INVOICE


def product_snapshot(product: Product, ledger_account_number: str | None) -> ProductSnapshot:
    return ProductSnapshot(
        pennylane_id=product.id,
        label=product.label,
        reference=product.reference or None,
        ledger_account_number=ledger_account_number,
        unit=product.unit or None,
    )


def customer_snapshot(customer: CompanyCustomer | IndividualCustomer) -> CustomerSnapshot:
    return CustomerSnapshot(
        pennylane_id=customer.id,
        name=customer.name,
        kind=customer.customer_type,
        emails=tuple(customer.emails),
    )


def _lines(
    lines: Iterable[PennylaneLine], products: Mapping[int, ProductSnapshot]
) -> tuple[DocumentLine, ...]:
    mapped = []
    for line in lines:
        product = None
        if line.product is not None:
            snapshot = products.get(line.product.id)
            product = (
                snapshot.ref()
                if snapshot is not None
                # Unknown to the poller (it cannot happen after a lookup, but never drop a line).
                else ProductRef(pennylane_id=line.product.id, label=line.label)
            )
        mapped.append(
            DocumentLine(
                pennylane_line_id=line.id,
                label=line.label,
                quantity=line.quantity,
                unit=line.unit,
                product=product,
                amount=line.currency_amount_before_tax,
            )
        )
    return tuple(mapped)


def _customer(
    customer_id: int | None, customers: Mapping[int, CustomerSnapshot]
) -> CustomerRef | None:
    if customer_id is None:
        return None
    snapshot = customers.get(customer_id)
    if snapshot is None:
        return CustomerRef(pennylane_id=customer_id, name=f"Pennylane customer {customer_id}")
    return snapshot.ref()


def invoice_version(
    invoice: CustomerInvoice,
    lines: Iterable[PennylaneLine],
    products: Mapping[int, ProductSnapshot],
    customers: Mapping[int, CustomerSnapshot],
) -> DocumentVersionRead:
    return DocumentVersionRead(
        kind=invoice_kind(invoice),
        pennylane_id=invoice.id,
        number=invoice.invoice_number or None,
        draft=invoice.draft,
        status=invoice.status,
        issued_on=invoice.date,
        updated_at=invoice.updated_at,
        customer=_customer(invoice.customer.id if invoice.customer else None, customers),
        quote_id=invoice.quote.id if invoice.quote else None,
        credited_invoice_id=invoice.credited_invoice.id if invoice.credited_invoice else None,
        currency=invoice.currency,
        lines=_lines(lines, products),
    )


def purchase_order_version(
    document: CommercialDocument,
    lines: Iterable[PennylaneLine],
    products: Mapping[int, ProductSnapshot],
    customers: Mapping[int, CustomerSnapshot],
) -> DocumentVersionRead:
    """A purchase order (bon de commande) has no draft state and no status in Pennylane."""
    return DocumentVersionRead(
        kind=DocumentKind.PURCHASE_ORDER,
        pennylane_id=document.id,
        number=document.document_number or None,
        draft=False,
        status="archived" if document.archived_at is not None else None,
        issued_on=document.date,
        updated_at=document.updated_at,
        customer=_customer(document.customer.id if document.customer else None, customers),
        quote_id=document.quote.id if document.quote else None,
        currency=document.currency,
        lines=_lines(lines, products),
    )


def product_upserted(product: Product, ledger_account_number: str | None) -> ProductUpserted:
    return ProductUpserted(
        pennylane_id=product.id,
        label=product.label,
        reference=product.reference or None,
        ledger_account_number=ledger_account_number,
        unit=product.unit or None,
        price_before_tax=product.price_before_tax,
        vat_rate=product.vat_rate or None,
        updated_at=product.updated_at,
    )


def customer_upserted(customer: CompanyCustomer | IndividualCustomer) -> CustomerUpserted:
    address = customer.billing_address
    billing = (
        PostalAddress(
            address=address.address,
            postal_code=address.postal_code,
            city=address.city,
            country_alpha2=address.country_alpha2,
        )
        if address.address and address.city and len(address.country_alpha2) == 2
        else None
    )
    return CustomerUpserted(
        pennylane_id=customer.id,
        kind=customer.customer_type,
        name=customer.name,
        emails=tuple(customer.emails),
        billing_address=billing,
        updated_at=customer.updated_at,
    )


def is_purchase_order(document: CommercialDocument) -> bool:
    return document.document_type == PURCHASE_ORDER_TYPE
