"""Lines of sales documents (invoices, quotes, commercial documents): built, updated, listed."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from starlette.responses import JSONResponse

from .. import rules
from ..errors import unprocessable
from ..rules import parse_limit, parse_sort
from ..state import Sandbox
from ..store import Company, Customer, Line, Product, SalesDocument
from .common import Ctx, check_ledger_account, dates_from, discount_from, ok, page_body, price_from


def build_line(sandbox: Sandbox, company: Company, data: Mapping[str, Any]) -> Line:
    """A line from its create form: either product + quantity, or free text with a price."""
    now = sandbox.now()
    product: Product | None = None
    if "product_id" in data:
        product = company.products.get(data["product_id"])
        if product is None:
            raise unprocessable(f"Product {data['product_id']} not found")
    ledger_account_id = data.get("ledger_account_id")
    if ledger_account_id is None and product is not None:
        ledger_account_id = product.ledger_account_id
    check_ledger_account(company, ledger_account_id)
    line = Line(
        id=sandbox.ids.next("invoice_lines"),
        label=data.get("label", product.label if product else ""),
        description=data.get("description") or "",
        unit=data.get("unit", product.unit if product else None),
        quantity=Decimal(str(data["quantity"])),
        unit_price=price_from(
            data.get("raw_currency_unit_price", product.price_before_tax if product else None),
            "raw_currency_unit_price",
        ),
        vat_rate=data.get("vat_rate", product.vat_rate if product else "FR_200"),
        product_id=product.id if product else None,
        ledger_account_id=ledger_account_id,
        discount=discount_from(data.get("discount")),
        section_rank=data.get("section_rank"),
        imputation_dates=dates_from(data.get("imputation_dates")),
        created_at=now,
        updated_at=now,
    )
    line.reprice()
    return line


def update_line(sandbox: Sandbox, company: Company, line: Line, data: Mapping[str, Any]) -> None:
    if "product_id" in data:
        product = company.products.get(data["product_id"])
        if product is None:
            raise unprocessable(f"Product {data['product_id']} not found")
        line.product_id = product.id
    if "ledger_account_id" in data:
        check_ledger_account(company, data["ledger_account_id"])
        line.ledger_account_id = data["ledger_account_id"]
    if "label" in data:
        line.label = data["label"]
    if "description" in data:
        line.description = data["description"] or ""
    if "unit" in data:
        line.unit = data["unit"]
    if "quantity" in data:
        line.quantity = Decimal(str(data["quantity"]))
    if "raw_currency_unit_price" in data:
        line.unit_price = price_from(data["raw_currency_unit_price"], "raw_currency_unit_price")
    if "vat_rate" in data:
        line.vat_rate = data["vat_rate"]
    if "discount" in data:
        line.discount = discount_from(data["discount"])
    if "section_rank" in data:
        line.section_rank = data["section_rank"]
    if "imputation_dates" in data:
        line.imputation_dates = dates_from(data["imputation_dates"])
    line.updated_at = sandbox.now()
    line.reprice()


def customer_of(company: Company, customer_id: int) -> Customer:
    customer = company.customers.get(customer_id)
    if customer is None:
        raise unprocessable(f"Customer {customer_id} not found")
    return customer


def new_document(
    ctx: Ctx, kind: Literal["customer_invoice", "quote"], data: Mapping[str, Any], record_id: int
) -> SalesDocument:
    customer_of(ctx.company, data["customer_id"])
    lines = [build_line(ctx.sandbox, ctx.company, line) for line in data["invoice_lines"]]
    if not lines:
        raise unprocessable("invoice_lines can't be blank")
    now = ctx.now
    date = dt.date.fromisoformat(data["date"])
    deadline = dt.date.fromisoformat(data["deadline"])
    if deadline < date:
        raise unprocessable("deadline must be on or after date")
    return SalesDocument(
        id=record_id,
        kind=kind,
        customer_id=data["customer_id"],
        date=date,
        deadline=deadline,
        lines=lines,
        external_reference=data.get("external_reference") or str(uuid.uuid4()),
        created_at=now,
        updated_at=now,
        label=data.get("label"),
        currency=data.get("currency", "EUR"),
        language=data.get("language", "fr_FR"),
        discount=discount_from(data.get("discount")),
        special_mention=data.get("special_mention"),
        pdf_invoice_free_text=data.get("pdf_invoice_free_text") or "",
        pdf_invoice_subject=data.get("pdf_invoice_subject") or "",
        pdf_description=data.get("pdf_description"),
        template_id=data.get("customer_invoice_template_id", data.get("quote_template_id")),
        draft=bool(data.get("draft", False)),
        transaction_reference=data.get("transaction_reference"),
    )


def lines_page(ctx: Ctx, lines: list[Line], *, with_imputation_dates: bool) -> JSONResponse:
    limit = parse_limit(ctx.query)
    sort = parse_sort(ctx.query, ["id", "rank"])
    by_id = {line.id: line for line in lines}
    page = rules.paginate(
        sorted(by_id), by_id.get, sort=sort, limit=limit, cursor=ctx.query.get("cursor") or None
    )
    return ok(
        page_body(
            page, lambda line: ctx.ser.line(line, with_imputation_dates=with_imputation_dates)
        )
    )
