"""What every resource's handlers share: the request context, the operation registry, listing
and pagination, and the parsing of the fields several resources accept."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import rules
from ..errors import ApiError, error_status, not_found, schema_violation, unprocessable
from ..money import parse_amount
from ..rules import COMPARISON, FilterField, Page, parse_filter, parse_limit, parse_sort
from ..serializers import JSON, Serializer
from ..spec import request_validator
from ..state import Sandbox
from ..store import Address, Company, Discount, Table

COMPANY_SCOPE_KEY = "sandbox.company"

RecordT = TypeVar("RecordT")


@dataclass
class Ctx:
    request: Request
    sandbox: Sandbox
    company: Company
    ser: Serializer
    spec_path: str

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query_params

    @property
    def now(self) -> dt.datetime:
        return self.sandbox.now()

    def path_id(self, name: str = "id") -> int:
        return cast(int, self.request.path_params[name])

    async def body(self) -> dict[str, Any]:
        """The JSON body, validated against the operation's request schema (400 otherwise)."""
        raw = await self.request.body()
        try:
            data = json.loads(raw or b"null", parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(
                400, {"message": "Malformed JSON body", "code": "ValidateError"}
            ) from None
        validator = request_validator(self.request.method, self.spec_path, "application/json")
        issue = validator.first_issue(data)
        if issue is not None:
            raise schema_violation(issue)
        return cast(dict[str, Any], data)


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in openapi.json, relative to /api/external/v2
    scope: str | None  # resource part of the scope; None for `/me`
    handler: Handler


OPERATIONS: list[Operation] = []


def operation(method: str, path: str, scope: str | None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS.append(Operation(method, path, scope, handler))
        return handler

    return register


def ok(body: JSON, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def owned(table: Table[RecordT], record_id: int, model: str) -> RecordT:  # type: ignore[type-var]
    record = table.get(record_id)
    if record is None:
        raise not_found(model, record_id)
    return record


def page_body(page: Page[RecordT], render: Callable[[RecordT], JSON]) -> JSON:
    return {
        "items": [render(item) for item in page.items],
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


def list_table(
    ctx: Ctx,
    table: Table[RecordT],  # type: ignore[type-var]
    fields: Mapping[str, FilterField[RecordT]],
    *,
    sortable: Mapping[str, Callable[[RecordT], str]] | None = None,
    max_limit: int = rules.LIST_MAX_LIMIT,
) -> Page[RecordT]:
    """Cursor pagination over a table with Pennylane's `filter`, `sort` and `limit` rules."""
    limit = parse_limit(ctx.query, max_limit)
    sort_keys = dict(sortable or {})
    sort = parse_sort(ctx.query, ["id", *sort_keys])
    conditions = parse_filter(ctx.query, fields)
    cursor = ctx.query.get("cursor") or None
    predicate = rules.matcher(conditions, fields)
    sort_field = sort.removeprefix("-")
    positions: list[rules.Position]
    if sort_field != "id":
        positions = list(table.sorted_keys(sort_field, sort_keys[sort_field]))  # type: ignore[arg-type]
    else:
        positions = list(_narrowed_ids(table, conditions))
    return rules.paginate(
        positions, table.get, sort=sort, limit=limit, cursor=cursor, predicate=predicate
    )


def _narrowed_ids(table: Table[Any], conditions: list[rules.Condition]) -> list[int]:
    """Ids worth scanning: an `id eq/in` or `external_reference eq` filter avoids a full scan."""
    for condition in conditions:
        if condition.field == "id" and condition.operator == "eq":
            value = condition.value
            return [value] if isinstance(value, int) and value in table.records else []
        if condition.field == "id" and condition.operator == "in":
            values = cast(frozenset[int], condition.value)
            return sorted(value for value in values if value in table.records)
        if condition.field == "external_reference" and condition.operator == "eq":
            return table.ids_with_external_reference(cast(str, condition.value))
    return table.ids


def date_key(record: Any) -> str:
    return cast(dt.date, record.date).isoformat()


def int_field(
    getter: Callable[[Any], object], ops: frozenset[str] = COMPARISON
) -> FilterField[Any]:
    return FilterField("int", ops, getter)


def str_field(getter: Callable[[Any], object], ops: frozenset[str]) -> FilterField[Any]:
    return FilterField("str", ops, getter)


def discount_from(data: Mapping[str, Any] | None) -> Discount | None:
    if data is None or data.get("value") is None:
        return None
    value = parse_amount(str(data["value"]))
    if value is None:
        raise unprocessable(f"Invalid discount value {data['value']!r}")
    return Discount(cast(Literal["absolute", "relative"], data["type"]), value)


def dates_from(data: Mapping[str, Any] | None) -> tuple[dt.date, dt.date] | None:
    if data is None:
        return None
    return dt.date.fromisoformat(data["start_date"]), dt.date.fromisoformat(data["end_date"])


def check_ledger_account(company: Company, account_id: int | None) -> None:
    if account_id is not None and account_id not in company.ledger_accounts.records:
        raise unprocessable(f"Ledger account {account_id} not found")


def price_from(text: object, name: str) -> Decimal:
    value = parse_amount(str(text))
    if value is None:
        raise unprocessable(f"{name} must be a decimal number, got {text!r}")
    return value


def check_unique_reference(
    table: Table[Any], reference: str, own_id: int | None, status: int
) -> None:
    if any(i != own_id for i in table.ids_with_external_reference(reference)):
        raise error_status(status, f"External reference {reference!r} has already been taken")


def address_from(data: Mapping[str, str]) -> Address:
    return Address(data["address"], data["postal_code"], data["city"], data["country_alpha2"])
