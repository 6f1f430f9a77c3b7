"""Aggregates stored as JSON come back exactly: Decimals, UUIDs, times, enums, nested maps."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest
from inventory.adapters.codec import decode, dumps, encode
from inventory.domain.catalog import (
    Customer,
    Location,
    PennylaneProduct,
    Product,
    Supplier,
)
from inventory.domain.documents import DocumentKind, DocumentLine, DocumentVersion
from inventory.domain.orders import Order, OrderStatus
from inventory.domain.pennylane_import import apply_pennylane_document
from inventory.domain.purchases import Purchase
from inventory.domain.returns import Return
from inventory.domain.settings import StockMode, TenantSettings
from inventory.domain.stock import Effect, StockKey
from inventory.domain.values import PostalAddress
from stockpit_runtime.uuids import FastUUID

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


# -- what a field holds decides its encoding, whatever its declared type --------------------


class Priority(IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Node:
    """A dataclass naming itself, with the shapes the domain does not use (yet)."""

    label: str
    children: list[Node] = field(default_factory=list)
    parent: Node | None = None
    extra: Any = None
    priority: Priority = Priority.LOW
    due: date | None = None
    either: int | str | None = None


@dataclass(frozen=True)
class DetailedKey(StockKey):
    note: str = ""


def test_values_not_of_their_declared_type_are_written_as_they_are() -> None:
    effect = Effect(real=3, reserved=Decimal("1.5"))  # type: ignore[arg-type]
    assert encode(effect) == {"real": 3, "reserved": "1.5", "incoming": "0"}
    location = Location(uuid4(), "t", StockMode.DEDUCT_ON_ORDER, active=1)  # type: ignore[arg-type]
    assert encode(location)["name"] == "deduct_on_order"
    assert encode(location)["active"] == 1
    key = DetailedKey(uuid4(), uuid4(), "shelf 2")
    order = Order(uuid4(), "t", True, OrderStatus.OPEN, AT, applied={key: Effect()})
    [[written_key, _]] = encode(order)["applied"]
    assert written_key == {
        "product_id": str(key.product_id),
        "location_id": str(key.location_id),
        "note": "shelf 2",
    }


def test_generic_shapes_round_trip() -> None:
    root = Node("root", extra={"free": [1, "two"]}, priority=Priority.HIGH, due=date(2026, 3, 2))
    root.children.append(Node("leaf", extra=UUID(int=7)))
    written = encode(root)
    assert written["priority"] == 2
    assert written["children"][0]["extra"] == "00000000-0000-0000-0000-000000000007"
    assert written["extra"] == [["free", [1, "two"]]]
    back = decode(Node, json.loads(dumps(root)))
    assert back.children[0].label == "leaf"
    assert back.priority is Priority.HIGH
    assert back.due == date(2026, 3, 2)
    assert back.extra == [["free", [1, "two"]]], "Any is taken as stored"
    with pytest.raises(TypeError):
        decode(Node, {"label": "x", "either": 5})  # a union of two types is not decodable
    assert decode(Node, {"label": "x", "either": None}).either is None


def test_documents_written_before_a_field_existed_take_its_default() -> None:
    product, _ = Product.create_in_stockpit("t", "Vis", None)
    stored = encode(product)
    del stored["pennylane_updated_at"]
    assert decode(Product, stored) == product
    with pytest.raises(KeyError):
        decode(Product, {**encode(product), "unknown": 1})


def test_nulls_in_plain_fields_stay_null() -> None:
    assert decode(Effect, {"real": None, "reserved": "1", "incoming": "0"}).real is None
    assert decode(list[UUID], [None]) == [None]
    assert decode(dict[str, datetime], [["a", None]]) == {"a": None}


def test_tops_and_collections_decode_by_the_given_type() -> None:
    ids = [uuid4(), uuid4()]
    assert decode(list[UUID], encode(ids)) == ids
    assert decode(tuple[UUID, ...], encode(tuple(ids))) == tuple(ids)
    assert decode(UUID, str(ids[0]).upper()) == ids[0]
    assert decode(timedelta, [1, 2, 3]) == timedelta(days=1, seconds=2, microseconds=3)
    assert decode(StockMode, "deduct_on_order") is StockMode.DEDUCT_ON_ORDER
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError):
        decode(float, 1.5)


def test_uuids_and_times_are_written_exactly() -> None:
    ids = [uuid4() for _ in range(10)]
    assert [encode(value) for value in ids] == [str(value) for value in ids]
    assert [decode(UUID, str(value)) for value in ids] == ids
    moments = [AT + timedelta(seconds=n) for n in range(10)]
    assert [encode(moment) for moment in moments] == [m.isoformat() for m in moments]
    paris = AT.astimezone(timezone(timedelta(hours=1)))
    assert encode(AT) == "2026-03-01T09:30:15.123456+00:00"
    assert encode(paris) == "2026-03-01T10:30:15.123456+01:00"


def test_uuids_are_read_as_fast_uuids_that_store_and_compare_as_the_standard_ones() -> None:
    order = _order_with_keys()
    stored = dumps(order)
    again = decode(Order, json.loads(stored))
    assert type(again.order_id) is FastUUID
    assert all(type(key.product_id) is FastUUID for key in again.applied)
    assert again == order
    # Written back exactly as before, and found under the standard UUIDs.
    assert dumps(again) == stored
    assert {key: effect for key, effect in again.applied.items()} == order.applied
    assert all(again.applied[key] == effect for key, effect in order.applied.items())


def _order_with_keys() -> Order:
    location = uuid4()
    return Order(
        order_id=uuid4(),
        tenant_id="acme",
        from_pennylane=True,
        status=OrderStatus.OPEN,
        created_at=AT,
        mode=StockMode.DEDUCT_ON_ORDER,
        location_id=location,
        applied={StockKey(uuid4(), location): Effect(real=Decimal(-n)) for n in range(1, 6)},
    )
