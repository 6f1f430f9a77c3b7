"""Aggregates stored as JSON come back exactly: Decimals, UUIDs, times, enums, nested maps."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from uuid import uuid4

from inventory.adapters.codec import decode, encode
from inventory.domain.catalog import (
    Customer,
    Location,
    PennylaneProduct,
    PostalAddress,
    Product,
    Supplier,
)
from inventory.domain.documents import DocumentKind, DocumentLine, DocumentVersion
from inventory.domain.orders import Order
from inventory.domain.pennylane_import import apply_pennylane_document
from inventory.domain.purchases import Purchase
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings

T = TypeVar("T")

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def _round_trip(value: T) -> T:
    return decode(type(value), json.loads(json.dumps(encode(value))))


def test_an_order_with_documents_deliveries_and_effects_round_trips() -> None:
    location = Location.create("t", "Principal")
    settings = TenantSettings("t", location.location_id, sync_interval=timedelta(minutes=7))
    chair = PennylaneProduct(7, "Chaise", "CH-1", is_service=False)
    version = DocumentVersion(
        "t",
        DocumentKind.PURCHASE_ORDER,
        12,
        AT,
        lines=(DocumentLine(1, Decimal("2.500000"), chair), DocumentLine(2, Decimal("1"))),
        quote_id=99,
    )
    application = apply_pennylane_document(settings, version, AT, products={})
    order = application.order
    assert order is not None
    [product] = application.new_products
    order.deliver({product.product_id: Decimal("0.125")}, AT + timedelta(hours=1))
    assert _round_trip(order) == order
    assert _round_trip(settings) == settings
    assert _round_trip(product) == product
    stored = encode(order)
    assert "2.500000" in json.dumps(stored), "Decimals are stored as exact strings"


def test_returns_purchases_and_catalog_round_trip() -> None:
    location = Location.create("t", "Principal")
    settings = TenantSettings("t", location.location_id, restock_on_credit_note=True)
    credit = DocumentVersion(
        "t",
        DocumentKind.CREDIT_NOTE,
        5,
        AT,
        lines=(DocumentLine(1, Decimal("-3"), PennylaneProduct(8, "Table", None, False)),),
    )
    application = apply_pennylane_document(settings, credit, AT, products={})
    assert application.return_ is not None
    assert _round_trip(application.return_) == application.return_
    assert isinstance(_round_trip(application.return_), Return)

    supplier = Supplier.create("t", "Durand", ("d@x.fr",))
    product, _ = Product.create_in_stockpit("t", "Vis", None)
    purchase, _ = Purchase.place(
        supplier, location, [(product, Decimal(10), Decimal("0.35"), "FR_200")], AT
    )
    purchase.receive({product.product_id: Decimal(4)}, date(2026, 3, 2), AT)
    purchase.request_send(purchase.receipts[0].receipt_id, supplier)
    assert _round_trip(purchase) == purchase
    assert _round_trip(supplier) == supplier
    customer = Customer.create_in_stockpit(
        "t", "Café", ("a@b.fr",), PostalAddress("1 rue X", "75001", "Paris", "FR")
    )
    customer.link_pennylane_id(41)
    assert _round_trip(customer) == customer
    assert _round_trip(location) == location
    assert (
        _round_trip(
            Order.for_document(credit.__class__("t", DocumentKind.INVOICE, 1, AT), AT)
        ).quote_id
        is None
    )
    assert decode(type(uuid4()), str(product.product_id)) == product.product_id
