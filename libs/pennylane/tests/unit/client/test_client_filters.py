import datetime as dt
import json
from decimal import Decimal

import pytest
from stockpit_pennylane.client import Filter
from stockpit_pennylane.client.filters import (
    COMMERCIAL_DOCUMENT_FILTERS,
    CUSTOMER_INVOICE_FILTERS,
    LEDGER_ACCOUNT_FILTERS,
    check_sort,
    encode_filter,
)


def test_conditions_encode_as_one_json_string_with_string_values() -> None:
    encoded = encode_filter(
        [
            Filter.eq("customer_id", 3),
            Filter.gteq("date", dt.date(2026, 1, 2)),
            Filter.eq("draft", False),
            Filter.in_("id", [1, 2, 3]),
        ],
        CUSTOMER_INVOICE_FILTERS,
        resource="customer_invoices",
    )
    assert encoded is not None
    assert json.loads(encoded) == [
        {"field": "customer_id", "operator": "eq", "value": "3"},
        {"field": "date", "operator": "gteq", "value": "2026-01-02"},
        {"field": "draft", "operator": "eq", "value": "false"},
        {"field": "id", "operator": "in", "value": ["1", "2", "3"]},
    ]


def test_no_conditions_means_no_filter_parameter() -> None:
    assert encode_filter([], CUSTOMER_INVOICE_FILTERS, resource="customer_invoices") is None


def test_every_constructor_picks_its_operator() -> None:
    ops = [
        Filter.eq("id", 1),
        Filter.not_eq("id", 1),
        Filter.lt("id", 1),
        Filter.lteq("id", 1),
        Filter.gt("id", 1),
        Filter.gteq("id", Decimal(1)),
        Filter.in_("id", [1]),
        Filter.not_in("id", [1]),
        Filter.start_with("number", "706"),
    ]
    assert [c.operator.value for c in ops] == [
        "eq",
        "not_eq",
        "lt",
        "lteq",
        "gt",
        "gteq",
        "in",
        "not_in",
        "start_with",
    ]


def test_unknown_field_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="updated_at"):
        encode_filter(
            [Filter.gteq("updated_at", dt.date(2026, 1, 1))],
            CUSTOMER_INVOICE_FILTERS,
            resource="customer_invoices",
        )


@pytest.mark.parametrize(
    ("condition", "rules"),
    [
        (Filter.gt("external_reference", "a"), CUSTOMER_INVOICE_FILTERS),
        (Filter.in_("draft", [True]), CUSTOMER_INVOICE_FILTERS),
        (Filter.start_with("document_type", "pro"), COMMERCIAL_DOCUMENT_FILTERS),
        (Filter.gt("number", "706"), LEDGER_ACCOUNT_FILTERS),
    ],
)
def test_operator_not_supported_by_the_field_is_refused(condition, rules) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="accepts"):
        encode_filter([condition], rules, resource="x")


def test_empty_in_list_is_refused() -> None:
    with pytest.raises(ValueError, match="matches nothing"):
        Filter.in_("id", [])


def test_datetimes_are_refused_because_filters_compare_dates() -> None:
    with pytest.raises(TypeError):
        Filter.gteq("date", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_sort_fields_are_checked() -> None:
    check_sort("-date", frozenset({"id", "date"}), resource="customer_invoices")
    with pytest.raises(ValueError, match="sorted"):
        check_sort("updated_at", frozenset({"id"}), resource="products")
