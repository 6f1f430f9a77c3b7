"""Pennylane's `filter` query parameter, built from typed conditions.

Pennylane takes one `filter` parameter whose value is a JSON *string* holding an array of
`{"field", "operator", "value"}` objects, AND-ed together. Each list endpoint accepts only some
fields and some operators per field; sending anything else is a 400, so conditions are checked here
against the spec's per-endpoint tables before any request is made.

Values are sent as strings (the spec's own examples send ids and booleans as `"42"` and `"true"`);
`in` / `not_in` send a JSON array of such strings."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

ScalarValue = str | int | bool | Decimal | dt.date


class Operator(StrEnum):
    EQ = "eq"
    NOT_EQ = "not_eq"
    LT = "lt"
    LTEQ = "lteq"
    GT = "gt"
    GTEQ = "gteq"
    IN = "in"
    NOT_IN = "not_in"
    START_WITH = "start_with"


def _wire_scalar(value: ScalarValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        raise TypeError("Pennylane filters compare dates, not date-times")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    operator: Operator
    value: str | tuple[str, ...]

    def to_wire(self) -> dict[str, str | list[str]]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"field": self.field, "operator": self.operator.value, "value": value}


class Filter:
    """Constructors for conditions: `Filter.eq("customer_id", 3)`, `Filter.in_("id", [1, 2])`…"""

    @staticmethod
    def eq(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.EQ, _wire_scalar(value))

    @staticmethod
    def not_eq(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.NOT_EQ, _wire_scalar(value))

    @staticmethod
    def lt(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.LT, _wire_scalar(value))

    @staticmethod
    def lteq(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.LTEQ, _wire_scalar(value))

    @staticmethod
    def gt(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.GT, _wire_scalar(value))

    @staticmethod
    def gteq(field: str, value: ScalarValue) -> Condition:
        return Condition(field, Operator.GTEQ, _wire_scalar(value))

    @staticmethod
    def in_(field: str, values: Iterable[ScalarValue]) -> Condition:
        wire = tuple(_wire_scalar(v) for v in values)
        if not wire:
            raise ValueError(f"filter {field} in [] matches nothing; do not send it")
        return Condition(field, Operator.IN, wire)

    @staticmethod
    def not_in(field: str, values: Iterable[ScalarValue]) -> Condition:
        wire = tuple(_wire_scalar(v) for v in values)
        if not wire:
            raise ValueError(f"filter {field} not_in [] excludes nothing; do not send it")
        return Condition(field, Operator.NOT_IN, wire)

    @staticmethod
    def start_with(field: str, prefix: str) -> Condition:
        return Condition(field, Operator.START_WITH, prefix)


_COMPARE = frozenset(Operator) - {Operator.START_WITH}
_EQ_SETS = frozenset({Operator.EQ, Operator.NOT_EQ, Operator.IN, Operator.NOT_IN})
_EQ_ONLY = frozenset({Operator.EQ})

# Per-endpoint field -> operators, from each list operation's `filter` description in the spec.
FilterRules = Mapping[str, frozenset[Operator]]

CUSTOMER_INVOICE_FILTERS: FilterRules = {
    "id": _COMPARE,
    "date": _COMPARE,
    "customer_id": _COMPARE,
    "billing_subscription_id": _COMPARE,
    "quote_id": _COMPARE,
    "invoice_number": _EQ_SETS,
    "draft": _EQ_ONLY,
    "credit_note": _EQ_ONLY,
    "external_reference": _EQ_ONLY,
    "category_id": frozenset({Operator.IN}),
}
COMMERCIAL_DOCUMENT_FILTERS: FilterRules = {
    "id": _COMPARE,
    "customer_id": _COMPARE,
    "document_type": _EQ_SETS,
}
QUOTE_FILTERS: FilterRules = {"id": _COMPARE, "customer_id": _COMPARE, "status": _EQ_SETS}
PRODUCT_FILTERS: FilterRules = {
    "id": _COMPARE,
    "label": frozenset({Operator.EQ, Operator.IN}),
    "reference": frozenset({Operator.EQ, Operator.IN}),
    "external_reference": _EQ_SETS,
}
LEDGER_ACCOUNT_FILTERS: FilterRules = {
    "id": _COMPARE,
    "number": frozenset({Operator.START_WITH, Operator.EQ, Operator.IN}),
    "enabled": _EQ_ONLY,
}
CUSTOMER_FILTERS: FilterRules = {
    "id": _COMPARE,
    "customer_type": frozenset({Operator.EQ, Operator.NOT_EQ}),
    "ledger_account_id": frozenset({Operator.EQ, Operator.NOT_EQ}),
    "name": frozenset({Operator.START_WITH, Operator.EQ}),
    "external_reference": _EQ_SETS | {Operator.START_WITH},
    "reg_no": _EQ_SETS,
    "emails": frozenset({Operator.IN}),
}
SUPPLIER_FILTERS: FilterRules = {
    "id": _COMPARE,
    "ledger_account_id": frozenset({Operator.EQ, Operator.NOT_EQ}),
    "name": frozenset({Operator.START_WITH}),
    "external_reference": _EQ_SETS,
    "emails": frozenset({Operator.IN}),
}
SUPPLIER_INVOICE_FILTERS: FilterRules = {
    "id": _COMPARE,
    "supplier_id": _COMPARE,
    "invoice_number": _EQ_SETS,
    "date": _COMPARE,
    "category_id": frozenset({Operator.IN}),
    "external_reference": _EQ_SETS,
    "payment_status": _EQ_SETS,
}

NO_FILTERS: FilterRules = {}


def encode_filter(
    conditions: Sequence[Condition], rules: FilterRules, *, resource: str
) -> str | None:
    """The `filter` parameter value, or None when there is nothing to filter on.

    Raises ValueError for a field or operator the endpoint does not accept (Pennylane would 400).
    """
    if not conditions:
        return None
    for condition in conditions:
        allowed = rules.get(condition.field)
        if allowed is None:
            raise ValueError(f"{resource} cannot be filtered on {condition.field!r}")
        if condition.operator not in allowed:
            ops = ", ".join(sorted(op.value for op in allowed))
            raise ValueError(
                f"{resource}.{condition.field} accepts {ops}, not {condition.operator.value}"
            )
    return json.dumps([c.to_wire() for c in conditions], separators=(",", ":"))


def check_sort(sort: str | None, allowed_fields: frozenset[str], *, resource: str) -> None:
    """Pennylane sorts by `field` or `-field`, on a short per-endpoint list of fields."""
    if sort is None:
        return
    if sort.removeprefix("-") not in allowed_fields:
        raise ValueError(f"{resource} can be sorted on {sorted(allowed_fields)}, not {sort!r}")
