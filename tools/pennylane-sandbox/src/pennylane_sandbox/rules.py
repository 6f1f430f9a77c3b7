"""Pennylane's list rules: `limit` bounds, `sort`, the JSON `filter` parameter, cursors."""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from .errors import bad_request, parameter_violation

DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100
CHANGELOG_MAX_LIMIT = 1000

COMPARISON = frozenset({"lt", "lteq", "gt", "gteq", "eq", "not_eq", "in", "not_in"})
EQUALITY_SETS = frozenset({"eq", "not_eq", "in", "not_in"})

FieldKind = Literal["int", "date", "str", "bool"]
T = TypeVar("T")


@dataclass(frozen=True)
class FilterField(Generic[T]):
    """A filterable field of one list endpoint: its type, allowed operators and value getter.

    The getter returns one value, or a list of values for multi-valued fields such as `emails`.
    """

    kind: FieldKind
    operators: frozenset[str]
    getter: Callable[[T], object]


@dataclass(frozen=True)
class Condition:
    field: str
    operator: str
    value: object


def parse_limit(query: Mapping[str, str], maximum: int = LIST_MAX_LIMIT) -> int:
    raw = query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise parameter_violation("limit", f"{raw!r} is not an integer", "ValidateError") from None
    if limit < 1:
        raise parameter_violation("limit", f"{limit} is less than 1", "LessThanMinimum")
    if limit > maximum:
        raise parameter_violation("limit", f"{limit} is more than {maximum}", "MoreThanMaximum")
    return limit


def parse_sort(query: Mapping[str, str], allowed: Iterable[str], default: str = "-id") -> str:
    sort = query.get("sort") or default
    if sort.removeprefix("-") not in set(allowed):
        raise bad_request(f"Invalid sort parameter: {sort!r}; sortable fields: {sorted(allowed)}")
    return sort


def _coerce(kind: FieldKind, field: str, value: object) -> object:
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, str | int | Decimal):
                return int(value)
            raise ValueError
        if kind == "date":
            return dt.date.fromisoformat(str(value))
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
            return str(value)
        raise ValueError
    except ValueError:
        raise bad_request(f"Invalid value {value!r} for filter field {field!r}") from None


def parse_filter(
    query: Mapping[str, str], fields: Mapping[str, FilterField[Any]]
) -> list[Condition]:
    """Parses `filter`: a JSON array of `{field, operator, value}` objects, combined with AND.

    A filter serialised as form brackets (`filter[0][field]=…`) is refused as Pennylane refuses
    it, never ignored: ignoring it would answer the unfiltered list to a client's lookup."""
    if any(key.startswith("filter[") for key in query):
        raise bad_request("The filter parameter must be a JSON array of conditions")
    raw = query.get("filter")
    if raw is None or raw == "":
        return []
    try:
        parsed = json.loads(raw, parse_float=Decimal)
    except json.JSONDecodeError:
        raise bad_request("The filter parameter must be a JSON array of conditions") from None
    if not isinstance(parsed, list):
        raise bad_request("The filter parameter must be a JSON array of conditions")
    conditions: list[Condition] = []
    for item in parsed:
        if not isinstance(item, dict) or set(item) != {"field", "operator", "value"}:
            raise bad_request(
                "Each filter must be an object with exactly 'field', 'operator' and 'value'"
            )
        name, operator, value = item["field"], item["operator"], item["value"]
        spec = fields.get(name) if isinstance(name, str) else None
        if spec is None:
            raise bad_request(f"Invalid filter field: {name!r}; available: {sorted(fields)}")
        if operator not in spec.operators:
            raise bad_request(
                f"Operator {operator!r} is not supported for field {name!r}; "
                f"supported: {sorted(spec.operators)}"
            )
        if operator in ("in", "not_in"):
            values = value.split(",") if isinstance(value, str) else value
            if not isinstance(values, list) or not values:
                raise bad_request(f"Filter {operator!r} on {name!r} needs a non-empty list")
            coerced: object = frozenset(_coerce(spec.kind, name, entry) for entry in values)
        else:
            coerced = _coerce(spec.kind, name, value)
        conditions.append(Condition(name, operator, coerced))
    return conditions


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    if operator == "eq":
        return bool(actual == expected)
    if operator == "not_eq":
        return bool(actual != expected)
    if operator == "in":
        return actual in expected
    if operator == "not_in":
        return actual not in expected
    if operator == "start_with":
        return isinstance(actual, str) and actual.startswith(str(expected))
    if actual is None:
        return False
    if operator == "lt":
        return bool(actual < expected)
    if operator == "lteq":
        return bool(actual <= expected)
    if operator == "gt":
        return bool(actual > expected)
    return bool(actual >= expected)


def matcher(
    conditions: Sequence[Condition], fields: Mapping[str, FilterField[T]]
) -> Callable[[T], bool]:
    bound = [(fields[c.field].getter, c.operator, c.value) for c in conditions]

    def matches(record: T) -> bool:
        for getter, operator, expected in bound:
            actual = getter(record)
            if isinstance(actual, list):
                if operator in ("not_eq", "not_in"):
                    if not all(_compare(operator, item, expected) for item in actual):
                        return False
                elif not any(_compare(operator, item, expected) for item in actual):
                    return False
            elif not _compare(operator, actual, expected):
                return False
        return True

    return matches


def encode_cursor(payload: Mapping[str, object]) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_request("Invalid cursor") from None
    if not isinstance(payload, dict):
        raise bad_request("Invalid cursor")
    return payload


Position = int | tuple[str, int]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool
    next_cursor: str | None


def _position_from_cursor(cursor: str, sort: str) -> Position:
    payload = decode_cursor(cursor)
    # The cursor only holds a position: a different sort than the one that made it is refused
    # rather than silently giving a wrong page.
    if payload.get("sort") != sort:
        raise bad_request("Invalid cursor: it was issued for another sort order")
    after = payload.get("after")
    if isinstance(after, int) and not isinstance(after, bool):
        return after
    if (
        isinstance(after, list)
        and len(after) == 2
        and isinstance(after[0], str)
        and isinstance(after[1], int)
    ):
        return (after[0], after[1])
    raise bad_request("Invalid cursor")


def _record_id(position: Position) -> int:
    return position if isinstance(position, int) else position[1]


def paginate(
    positions: Sequence[Position],
    fetch: Callable[[int], T | None],
    *,
    sort: str,
    limit: int,
    cursor: str | None,
    predicate: Callable[[T], bool] | None = None,
    extra_cursor: Mapping[str, object] | None = None,
) -> Page[T]:
    """One page from ascending `positions` (ids, or `(key, id)` pairs), in `sort`'s direction."""
    descending = sort.startswith("-")
    if cursor is None:
        start, stop = 0, len(positions)
    else:
        after = _position_from_cursor(cursor, sort)
        if type(after) is not type(positions[0] if positions else after):
            raise bad_request("Invalid cursor")
        if descending:
            start, stop = 0, bisect.bisect_left(positions, after)
        else:
            start, stop = bisect.bisect_right(positions, after), len(positions)
    order: Iterator[int] = (
        iter(range(stop - 1, start - 1, -1)) if descending else iter(range(start, stop))
    )
    found: list[T] = []
    found_positions: list[Position] = []
    for index in order:
        record = fetch(_record_id(positions[index]))
        if record is None or (predicate is not None and not predicate(record)):
            continue
        if len(found) == limit:
            last = found_positions[-1]
            payload: dict[str, object] = {
                "sort": sort,
                "after": last if isinstance(last, int) else list(last),
                **(extra_cursor or {}),
            }
            return Page(found, True, encode_cursor(payload))
        found.append(record)
        found_positions.append(positions[index])
    return Page(found, False, None)
