"""The compiled codec writes exactly what the first, generic codec wrote and reads it back.

`reference_encode`/`reference_decode` are that first codec, kept verbatim as the definition of
the stored format: documents already in PostgreSQL were written by it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st
from inventory.adapters.codec import decode, dumps, encode
from inventory.domain.catalog import Customer, Location, Product, Supplier
from inventory.domain.documents import DocumentKind, SourceDocument, SourceLine
from inventory.domain.orders import Credit, DeliveryNote, Order, OrderStatus
from inventory.domain.purchases import (
    Purchase,
    PurchaseLine,
    PurchaseStatus,
    Receipt,
    SendStatus,
)
from inventory.domain.returns import Return, ReturnStatus
from inventory.domain.settings import (
    MAX_SYNC_INTERVAL,
    MIN_SYNC_INTERVAL,
    StockMode,
    TenantSettings,
)
from inventory.domain.stock import Effect, StockKey
from inventory.domain.values import PostalAddress


def reference_encode(value: object) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return [value.days, value.seconds, value.microseconds]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: reference_encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return [[reference_encode(k), reference_encode(v)] for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [reference_encode(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__}")


def reference_decode(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        if data is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return reference_decode(inner, data)
    if origin is dict:
        key_type, value_type = typing.get_args(tp)
        return {reference_decode(key_type, k): reference_decode(value_type, v) for k, v in data}
    if origin is list:
        (item_type,) = typing.get_args(tp)
        return [reference_decode(item_type, item) for item in data]
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        return tuple(reference_decode(item_type, item) for item in data)
    if tp is Any or tp in (str, int, bool) or data is None:
        return data
    if isinstance(tp, type):
        if issubclass(tp, Enum):
            return tp(data)
        if tp is Decimal:
            return Decimal(data)
        if tp is UUID:
            return UUID(data)
        if tp is datetime:
            return datetime.fromisoformat(data)
        if tp is date:
            return date.fromisoformat(data)
        if tp is timedelta:
            days, seconds, microseconds = data
            return timedelta(days=days, seconds=seconds, microseconds=microseconds)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            return tp(**{name: reference_decode(hints[name], v) for name, v in data.items()})
    raise TypeError(f"cannot decode {tp!r}")


def assert_same_as_reference(value: object) -> None:
    """Same document as the reference (key order included), and both read it back alike."""
    written = dumps(value)
    assert written == json.dumps(reference_encode(value))
    assert json.dumps(encode(value)) == written
    stored = json.loads(written)
    decoded = decode(type(value), stored)
    assert decoded == value
    assert decoded == reference_decode(type(value), stored)
    assert type(decoded) is type(value)


# -- the format, written out ---------------------------------------------------------------

PRODUCT_ID = UUID("00000000-0000-4000-8000-000000000001")
LOCATION_ID = UUID("00000000-0000-4000-8000-000000000002")
ORDER_ID = UUID("00000000-0000-4000-8000-000000000003")
NOTE_ID = UUID("00000000-0000-4000-8000-000000000004")
AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def small_order() -> Order:
    source = SourceDocument(
        DocumentKind.INVOICE,
        13,
        AT,
        "f1",
        draft=False,
        deleted=False,
        lines=(SourceLine(1, PRODUCT_ID, Decimal("2.500000")),),
        number="F-13",
    )
    return Order(
        ORDER_ID,
        "t",
        from_pennylane=True,
        status=OrderStatus.OPEN,
        created_at=AT,
        quote_id=99,
        mode=StockMode.RESERVE_UNTIL_DELIVERY,
        location_id=LOCATION_ID,
        sources={"invoice:13": source},
        deliveries=[
            DeliveryNote(
                NOTE_ID, LOCATION_ID, {PRODUCT_ID: Decimal("0.5")}, AT + timedelta(hours=1)
            )
        ],
        applied={
            StockKey(PRODUCT_ID, LOCATION_ID): Effect(real=Decimal("-0.5"), reserved=Decimal(2))
        },
    )


SMALL_ORDER_DOC: dict[str, Any] = {
    "order_id": "00000000-0000-4000-8000-000000000003",
    "tenant_id": "t",
    "from_pennylane": True,
    "status": "open",
    "created_at": "2026-03-01T09:30:15.123456+00:00",
    "customer_id": None,
    "quote_id": 99,
    "mode": "reserve_until_delivery",
    "location_id": "00000000-0000-4000-8000-000000000002",
    "stockpit_lines": [],
    "sources": [
        [
            "invoice:13",
            {
                "kind": "invoice",
                "pennylane_id": 13,
                "updated_at": "2026-03-01T09:30:15.123456+00:00",
                "fingerprint": "f1",
                "draft": False,
                "deleted": False,
                "lines": [
                    {
                        "line_id": 1,
                        "product_id": "00000000-0000-4000-8000-000000000001",
                        "quantity": "2.500000",
                    }
                ],
                "number": "F-13",
                "goods": [],
                "services": [],
                "status": None,
                "issued_on": None,
            },
        ]
    ],
    "deliveries": [
        {
            "delivery_note_id": "00000000-0000-4000-8000-000000000004",
            "location_id": "00000000-0000-4000-8000-000000000002",
            "lines": [["00000000-0000-4000-8000-000000000001", "0.5"]],
            "delivered_at": "2026-03-01T10:30:15.123456+00:00",
        }
    ],
    "applied": [
        [
            {
                "product_id": "00000000-0000-4000-8000-000000000001",
                "location_id": "00000000-0000-4000-8000-000000000002",
            },
            {"real": "-0.5", "reserved": "2", "incoming": "0"},
        ]
    ],
    "credits": [],
    "pennylane_unlinked": False,
}


def test_an_order_is_written_in_the_stored_format() -> None:
    order = small_order()
    assert encode(order) == SMALL_ORDER_DOC
    assert json.loads(dumps(order)) == SMALL_ORDER_DOC
    assert list(encode(order)) == list(SMALL_ORDER_DOC), "fields in declaration order"
    assert decode(Order, SMALL_ORDER_DOC) == order


def test_an_order_stored_before_credits_and_line_classes_reads_with_their_defaults() -> None:
    """Rules 10-12 and re-pointing added fields (credits, goods/services decisions, status,
    pennylane_unlinked): documents written before them read with their defaults."""
    older = {
        key: value
        for key, value in SMALL_ORDER_DOC.items()
        if key not in ("credits", "pennylane_unlinked")
    }
    [[reference, source]] = older["sources"]
    older["sources"] = [
        [reference, {k: v for k, v in source.items() if k not in ("goods", "services", "status")}]
    ]
    assert decode(Order, older) == small_order()


def test_settings_are_written_in_the_stored_format() -> None:
    settings = TenantSettings("t", LOCATION_ID, sync_interval=timedelta(minutes=7, microseconds=5))
    expected = {
        "tenant_id": "t",
        "default_location_id": "00000000-0000-4000-8000-000000000002",
        "import_products": True,
        "import_services": False,
        "delivery_notes_update_real_stock": False,
        "restock_on_credit_note": False,
        "sync_interval": [0, 420, 5],
    }
    assert encode(settings) == expected
    assert decode(TenantSettings, expected) == settings


# -- every aggregate the repository stores, generated ----------------------------------------

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
)
moments = st.datetimes(timezones=ZONES)
quantities = st.decimals(allow_nan=False, allow_infinity=False)
names = st.text(max_size=12)
ids = st.integers(min_value=-(2**53), max_value=2**53)
optional_uuids = st.none() | st.uuids()
effects = st.builds(Effect, quantities, quantities, quantities)
applied_effects = st.dictionaries(st.builds(StockKey, st.uuids(), st.uuids()), effects, max_size=4)
source_documents = st.builds(
    SourceDocument,
    st.sampled_from(DocumentKind),
    ids,
    moments,
    names,
    st.booleans(),
    st.booleans(),
    st.lists(st.builds(SourceLine, ids, st.uuids(), quantities), max_size=4).map(tuple),
    st.none() | names,
    goods=st.lists(ids, max_size=3).map(tuple),
    services=st.lists(ids, max_size=3).map(tuple),
    status=st.none() | names,
)
orders = st.builds(
    Order,
    st.uuids(),
    names,
    st.booleans(),
    st.sampled_from(OrderStatus),
    moments,
    customer_id=optional_uuids,
    quote_id=st.none() | ids,
    mode=st.none() | st.sampled_from(StockMode),
    location_id=optional_uuids,
    stockpit_lines=st.dictionaries(st.uuids(), quantities, max_size=4),
    sources=st.dictionaries(names, source_documents, max_size=3),
    deliveries=st.lists(
        st.builds(
            DeliveryNote,
            st.uuids(),
            st.uuids(),
            st.dictionaries(st.uuids(), quantities, max_size=3),
            moments,
        ),
        max_size=3,
    ),
    applied=applied_effects,
    credits=st.dictionaries(
        st.uuids(),
        st.builds(
            Credit,
            st.uuids(),
            names,
            st.dictionaries(st.uuids(), quantities, max_size=3),
            st.booleans(),
            optional_uuids,
        ),
        max_size=2,
    ),
)
returns = st.builds(
    Return,
    st.uuids(),
    names,
    ids,
    st.sampled_from(ReturnStatus),
    moments,
    customer_id=optional_uuids,
    order_id=optional_uuids,
    restock=st.none() | st.booleans(),
    location_id=optional_uuids,
    source=st.none() | source_documents,
    quantities=st.dictionaries(st.uuids(), quantities, max_size=4),
    edited_in_stockpit=st.booleans(),
    applied=applied_effects,
    settled_by_order=st.booleans(),
)
purchases = st.builds(
    Purchase,
    st.uuids(),
    names,
    st.uuids(),
    st.uuids(),
    moments,
    st.lists(st.builds(PurchaseLine, st.uuids(), names, quantities, quantities, names), max_size=3),
    status=st.sampled_from(PurchaseStatus),
    receipts=st.lists(
        st.builds(
            Receipt,
            st.uuids(),
            st.uuids(),
            st.dates(),
            st.dictionaries(st.uuids(), quantities, max_size=3),
            moments,
            send_status=st.sampled_from(SendStatus),
            pennylane_invoice_id=st.none() | ids,
            send_failure=st.none() | names,
        ),
        max_size=2,
    ),
    applied=applied_effects,
)
products = st.builds(
    Product,
    st.uuids(),
    names,
    names,
    st.none() | names,
    st.booleans(),
    pennylane_id=st.none() | ids,
    active=st.booleans(),
    deleted=st.booleans(),
    name_changed_at=st.none() | moments,
    sku_changed_at=st.none() | moments,
    pennylane_name=st.none() | names,
    pennylane_sku=st.none() | names,
    pennylane_updated_at=st.none() | moments,
)
email_lists = st.lists(names, max_size=2).map(tuple)
addresses = st.none() | st.builds(PostalAddress, names, names, names, names)
customers = st.builds(
    Customer,
    st.uuids(),
    names,
    names,
    email_lists,
    addresses,
    pennylane_id=st.none() | ids,
    pennylane_creation_requested=st.booleans(),
    name_changed_at=st.none() | moments,
    emails_changed_at=st.none() | moments,
    pennylane_name=st.none() | names,
    pennylane_emails=st.none() | email_lists,
    pennylane_updated_at=st.none() | moments,
)
suppliers = st.builds(Supplier, st.uuids(), names, names, email_lists, st.booleans())
locations = st.builds(Location, st.uuids(), names, names, st.booleans())
settings = st.builds(
    TenantSettings,
    st.text(min_size=1, max_size=8),
    st.uuids(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.timedeltas(min_value=MIN_SYNC_INTERVAL, max_value=MAX_SYNC_INTERVAL),
)
aggregates = st.one_of(
    orders, returns, purchases, products, customers, suppliers, locations, settings
)


@given(aggregates)
def test_every_stored_aggregate_is_written_as_before_and_read_back(aggregate: object) -> None:
    assert_same_as_reference(aggregate)


@given(st.lists(moments, min_size=2, max_size=6))
def test_equal_instants_in_other_zones_keep_their_own_text(instants: list[datetime]) -> None:
    """Remembered UTC texts must not be handed to an equal datetime of another zone."""
    same_instant = [instants[0].astimezone(zone) for zone in (UTC, timezone(timedelta(hours=3)))]
    for moment in [*instants, *same_instant]:
        assert encode(moment) == moment.isoformat()
        assert dumps([moment]) == json.dumps([moment.isoformat()])
