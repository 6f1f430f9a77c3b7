"""Suppliers: `/suppliers`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from ..rules import EQUALITY_SETS, FilterField
from ..store import Supplier
from .common import (
    Ctx,
    address_from,
    check_unique_reference,
    int_field,
    list_table,
    ok,
    operation,
    owned,
    page_body,
    str_field,
)
from .ledger_accounts import ledger_account_by_number

SUPPLIER_FIELDS: dict[str, FilterField[Supplier]] = {
    "id": int_field(lambda r: r.id),
    "ledger_account_id": int_field(lambda r: r.ledger_account_id, frozenset({"eq", "not_eq"})),
    "name": str_field(lambda r: r.name, frozenset({"start_with"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS),
    "emails": str_field(lambda r: list(r.emails), frozenset({"in"})),
}


def _apply_supplier_fields(ctx: Ctx, supplier: Supplier, data: Mapping[str, Any]) -> None:
    for name in (
        "name",
        "establishment_no",
        "reg_no",
        "vat_number",
        "iban",
        "external_reference",
        "supplier_payment_method",
        "supplier_due_date_delay",
        "supplier_due_date_rule",
    ):
        if name in data:
            setattr(supplier, name, data[name])
    if "emails" in data:
        supplier.emails = list(data["emails"])
    if "postal_address" in data:
        supplier.postal_address = address_from(data["postal_address"])
    if "ledger_account" in data:
        account = data["ledger_account"]
        supplier.ledger_account_id = (
            None
            if account is None
            else ledger_account_by_number(ctx, account["number"], supplier.name)
        )


@operation("GET", "/suppliers", "suppliers")
async def list_suppliers(ctx: Ctx) -> Response:
    return ok(page_body(list_table(ctx, ctx.company.suppliers, SUPPLIER_FIELDS), ctx.ser.supplier))


@operation("GET", "/suppliers/{id}", "suppliers")
async def get_supplier(ctx: Ctx) -> Response:
    return ok(ctx.ser.supplier(owned(ctx.company.suppliers, ctx.path_id(), "Supplier")))


@operation("POST", "/suppliers", "suppliers")
async def create_supplier(ctx: Ctx) -> Response:
    data = await ctx.body()
    reference = data.get("external_reference") or str(uuid.uuid4())
    check_unique_reference(ctx.company.suppliers, reference, None, 409)
    now = ctx.now
    supplier = Supplier(
        id=ctx.sandbox.ids.next("suppliers"),
        name=data["name"],
        external_reference=reference,
        created_at=now,
        updated_at=now,
    )
    _apply_supplier_fields(ctx, supplier, {**data, "external_reference": reference})
    ctx.company.suppliers.add(supplier)
    ctx.sandbox.changed(ctx.company, "suppliers", supplier, "insert", now, now)
    return ok(ctx.ser.supplier(supplier), 201)


@operation("PUT", "/suppliers/{id}", "suppliers")
async def update_supplier(ctx: Ctx) -> Response:
    supplier = owned(ctx.company.suppliers, ctx.path_id(), "Supplier")
    data = await ctx.body()
    previous_reference = supplier.external_reference
    if "external_reference" in data:
        # The spec declares no 409 on this operation, so a clash is a business-rule 422.
        check_unique_reference(ctx.company.suppliers, data["external_reference"], supplier.id, 422)
    _apply_supplier_fields(ctx, supplier, data)
    supplier.updated_at = ctx.now
    ctx.company.suppliers.touched(supplier, previous_reference)
    ctx.sandbox.changed(
        ctx.company, "suppliers", supplier, "update", supplier.created_at, supplier.updated_at
    )
    return ok(ctx.ser.supplier(supplier))
