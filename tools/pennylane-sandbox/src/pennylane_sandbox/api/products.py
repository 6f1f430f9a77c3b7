"""Products: `/products`."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from ..rules import EQUALITY_SETS, FilterField
from ..store import Product
from .common import (
    Ctx,
    check_ledger_account,
    check_unique_reference,
    int_field,
    list_table,
    ok,
    operation,
    owned,
    page_body,
    price_from,
    str_field,
)

PRODUCT_FIELDS: dict[str, FilterField[Product]] = {
    "id": int_field(lambda r: r.id),
    "label": str_field(lambda r: r.label, frozenset({"eq", "in"})),
    "reference": str_field(lambda r: r.reference, frozenset({"eq", "in"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS),
}


@operation("GET", "/products", "products")
async def list_products(ctx: Ctx) -> Response:
    return ok(page_body(list_table(ctx, ctx.company.products, PRODUCT_FIELDS), ctx.ser.product))


@operation("GET", "/products/{id}", "products")
async def get_product(ctx: Ctx) -> Response:
    return ok(ctx.ser.product(owned(ctx.company.products, ctx.path_id(), "Product")))


@operation("POST", "/products", "products")
async def create_product(ctx: Ctx) -> Response:
    data = await ctx.body()
    reference = data.get("external_reference") or str(uuid.uuid4())
    check_unique_reference(ctx.company.products, reference, None, 422)
    check_ledger_account(ctx.company, data.get("ledger_account_id"))
    now = ctx.now
    product = Product(
        id=ctx.sandbox.ids.next("products"),
        label=data["label"],
        description=data.get("description", ""),
        external_reference=reference,
        price_before_tax=price_from(data["price_before_tax"], "price_before_tax"),
        vat_rate=data["vat_rate"],
        unit=data.get("unit", "piece"),
        currency=data.get("currency", "EUR"),
        reference=data.get("reference"),
        ledger_account_id=data.get("ledger_account_id"),
        created_at=now,
        updated_at=now,
    )
    ctx.company.products.add(product)
    ctx.sandbox.changed(ctx.company, "products", product, "insert", now, now)
    return ok(ctx.ser.product(product), 201)


@operation("PUT", "/products/{id}", "products")
async def update_product(ctx: Ctx) -> Response:
    product = owned(ctx.company.products, ctx.path_id(), "Product")
    data = await ctx.body()
    previous_reference = product.external_reference
    if "external_reference" in data:
        check_unique_reference(ctx.company.products, data["external_reference"], product.id, 422)
    if "ledger_account_id" in data:
        check_ledger_account(ctx.company, data["ledger_account_id"])
    if "price_before_tax" in data:
        product.price_before_tax = price_from(data["price_before_tax"], "price_before_tax")
    for name in (
        "label",
        "description",
        "external_reference",
        "vat_rate",
        "unit",
        "currency",
        "reference",
        "ledger_account_id",
    ):
        if name in data:
            setattr(product, name, data[name])
    product.updated_at = ctx.now
    ctx.company.products.touched(product, previous_reference)
    ctx.sandbox.changed(
        ctx.company, "products", product, "update", product.created_at, product.updated_at
    )
    return ok(ctx.ser.product(product))
