"""Customers: `/customers`, `/company_customers`, `/individual_customers`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from starlette.responses import Response

from ..errors import not_found
from ..rules import EQUALITY_SETS, FilterField
from ..store import Customer
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

CUSTOMER_FIELDS: dict[str, FilterField[Customer]] = {
    "id": int_field(lambda r: r.id),
    "customer_type": str_field(lambda r: r.customer_type, frozenset({"eq", "not_eq"})),
    "ledger_account_id": int_field(lambda r: r.ledger_account_id, frozenset({"eq", "not_eq"})),
    "name": str_field(lambda r: r.name, frozenset({"start_with", "eq"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS | {"start_with"}),
    "reg_no": str_field(lambda r: r.reg_no, EQUALITY_SETS),
    "emails": str_field(lambda r: list(r.emails), frozenset({"in"})),
}


@operation("GET", "/customers", "customers")
async def list_customers(ctx: Ctx) -> Response:
    page = list_table(ctx, ctx.company.customers, CUSTOMER_FIELDS)
    return ok(page_body(page, lambda c: ctx.ser.customer(c, with_type=True)))


@operation("GET", "/customers/{id}", "customers")
async def get_customer(ctx: Ctx) -> Response:
    customer = owned(ctx.company.customers, ctx.path_id(), "Customer")
    return ok(ctx.ser.customer(customer, with_type=True))


def _typed_customer(ctx: Ctx, kind: str) -> Customer:
    customer = ctx.company.customers.get(ctx.path_id())
    if customer is None or customer.customer_type != kind:
        model = "CompanyCustomer" if kind == "company" else "IndividualCustomer"
        raise not_found(model, ctx.path_id())
    return customer


def _apply_customer_fields(ctx: Ctx, customer: Customer, data: Mapping[str, Any]) -> None:
    for name in (
        "name",
        "vat_number",
        "reg_no",
        "phone",
        "recipient",
        "reference",
        "notes",
        "billing_iban",
        "payment_conditions",
        "billing_language",
        "first_name",
        "last_name",
        "external_reference",
    ):
        if name in data:
            setattr(
                customer, name, data[name] if data[name] is not None else getattr(customer, name)
            )
    if "emails" in data:
        customer.emails = list(data["emails"])
    if "billing_address" in data:
        customer.billing_address = address_from(data["billing_address"])
    if "delivery_address" in data:
        customer.delivery_address = address_from(data["delivery_address"])
    if "ledger_account" in data:
        account = data["ledger_account"]
        customer.ledger_account_id = (
            None
            if account is None
            else ledger_account_by_number(ctx, account["number"], customer.name)
        )
    if customer.customer_type == "individual" and ({"first_name", "last_name"} & set(data)):
        customer.name = f"{customer.first_name} {customer.last_name}".strip()


async def _create_customer(ctx: Ctx, kind: Literal["company", "individual"]) -> Response:
    data = await ctx.body()
    reference = data.get("external_reference") or str(uuid.uuid4())
    check_unique_reference(ctx.company.customers, reference, None, 409)
    now = ctx.now
    billing = address_from(data["billing_address"])
    customer = Customer(
        id=ctx.sandbox.ids.next("customers"),
        customer_type=kind,
        name=data.get("name", ""),
        external_reference=reference,
        billing_address=billing,
        delivery_address=billing,
        created_at=now,
        updated_at=now,
    )
    _apply_customer_fields(ctx, customer, {**data, "external_reference": reference})
    if kind == "individual":
        customer.name = f"{customer.first_name} {customer.last_name}".strip()
    ctx.company.customers.add(customer)
    ctx.sandbox.changed(ctx.company, "customers", customer, "insert", now, now)
    return ok(ctx.ser.customer(customer, with_type=False), 201)


async def _update_customer(ctx: Ctx, kind: Literal["company", "individual"]) -> Response:
    customer = _typed_customer(ctx, kind)
    data = await ctx.body()
    previous_reference = customer.external_reference
    if "external_reference" in data:
        check_unique_reference(ctx.company.customers, data["external_reference"], customer.id, 409)
    _apply_customer_fields(ctx, customer, data)
    customer.updated_at = ctx.now
    ctx.company.customers.touched(customer, previous_reference)
    ctx.sandbox.changed(
        ctx.company, "customers", customer, "update", customer.created_at, customer.updated_at
    )
    return ok(ctx.ser.customer(customer, with_type=False))


@operation("POST", "/company_customers", "customers")
async def create_company_customer(ctx: Ctx) -> Response:
    return await _create_customer(ctx, "company")


@operation("GET", "/company_customers/{id}", "customers")
async def get_company_customer(ctx: Ctx) -> Response:
    return ok(ctx.ser.customer(_typed_customer(ctx, "company"), with_type=False))


@operation("PUT", "/company_customers/{id}", "customers")
async def update_company_customer(ctx: Ctx) -> Response:
    return await _update_customer(ctx, "company")


@operation("POST", "/individual_customers", "customers")
async def create_individual_customer(ctx: Ctx) -> Response:
    return await _create_customer(ctx, "individual")


@operation("GET", "/individual_customers/{id}", "customers")
async def get_individual_customer(ctx: Ctx) -> Response:
    return ok(ctx.ser.customer(_typed_customer(ctx, "individual"), with_type=False))


@operation("PUT", "/individual_customers/{id}", "customers")
async def update_individual_customer(ctx: Ctx) -> Response:
    return await _update_customer(ctx, "individual")
