"""Supplier invoices: `/supplier_invoices` and their import."""

from __future__ import annotations

import datetime as dt
import uuid

from starlette.responses import Response

from .. import rules
from ..errors import conflict, unprocessable
from ..money import ZERO
from ..rules import COMPARISON, EQUALITY_SETS, FilterField, parse_limit, parse_sort
from ..store import SupplierInvoice, SupplierInvoiceLine
from .common import (
    Ctx,
    check_ledger_account,
    date_key,
    dates_from,
    int_field,
    list_table,
    ok,
    operation,
    owned,
    page_body,
    price_from,
    str_field,
)

SUPPLIER_INVOICE_FIELDS: dict[str, FilterField[SupplierInvoice]] = {
    "id": int_field(lambda r: r.id),
    "supplier_id": int_field(lambda r: r.supplier_id),
    "invoice_number": str_field(lambda r: r.invoice_number, EQUALITY_SETS),
    "date": FilterField("date", COMPARISON, lambda r: r.date),
    "category_id": int_field(lambda r: None, frozenset({"in"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS),
    "payment_status": str_field(lambda r: r.payment_status, EQUALITY_SETS),
}


@operation("POST", "/supplier_invoices/import", "supplier_invoices")
async def import_supplier_invoice(ctx: Ctx) -> Response:
    data = await ctx.body()
    company = ctx.company
    if data["supplier_id"] not in company.suppliers.records:
        raise unprocessable(f"Supplier {data['supplier_id']} not found")
    attachment_id = data["file_attachment_id"]
    if attachment_id not in company.file_attachments.records:
        raise unprocessable(f"File attachment {attachment_id} not found")
    if attachment_id in company.imported_attachment_ids:
        raise conflict(f"A document with ID {attachment_id} already exists with such attachment.")
    total = price_from(data["currency_amount"], "currency_amount")
    before_tax = price_from(data["currency_amount_before_tax"], "currency_amount_before_tax")
    tax = price_from(data["currency_tax"], "currency_tax")
    if before_tax + tax != total:
        raise unprocessable("currency_amount must equal currency_amount_before_tax + currency_tax")
    now = ctx.now
    lines: list[SupplierInvoiceLine] = []
    for line in data["invoice_lines"]:
        check_ledger_account(company, line.get("ledger_account_id"))
        line_total = price_from(line["currency_amount"], "invoice_lines.currency_amount")
        line_tax = price_from(line["currency_tax"], "invoice_lines.currency_tax")
        lines.append(
            SupplierInvoiceLine(
                id=ctx.sandbox.ids.next("supplier_invoice_lines"),
                label=line.get("label") or (line.get("ledger_entry_line") or {}).get("label", ""),
                description=line.get("description", ""),
                vat_rate=line["vat_rate"],
                currency_amount=line_total,
                currency_tax=line_tax,
                amount=price_from(line.get("amount", line_total), "invoice_lines.amount"),
                tax=price_from(line.get("tax", line_tax), "invoice_lines.tax"),
                ledger_account_id=line.get("ledger_account_id"),
                imputation_dates=dates_from(line.get("imputation_dates")),
                created_at=now,
                updated_at=now,
            )
        )
    if sum((line.currency_amount for line in lines), ZERO) != total:
        raise unprocessable("The invoice lines' currency_amount do not add up to currency_amount")
    if sum((line.currency_tax for line in lines), ZERO) != tax:
        raise unprocessable("The invoice lines' currency_tax do not add up to currency_tax")
    invoice = SupplierInvoice(
        id=ctx.sandbox.ids.next("supplier_invoices"),
        supplier_id=data["supplier_id"],
        file_attachment_id=attachment_id,
        date=dt.date.fromisoformat(data["date"]),
        deadline=dt.date.fromisoformat(data["deadline"]),
        invoice_number=data.get("invoice_number", ""),
        currency=data.get("currency", "EUR"),
        currency_amount_before_tax=before_tax,
        currency_amount=total,
        currency_tax=tax,
        amount=price_from(data.get("amount", total), "amount"),
        tax=price_from(data.get("tax", tax), "tax"),
        label=data.get("label"),
        external_reference=data.get("external_reference") or str(uuid.uuid4()),
        lines=lines,
        accounting_status="draft" if data.get("import_as_incomplete") else "entry",
        created_at=now,
        updated_at=now,
        transaction_reference=data.get("transaction_reference"),
    )
    company.imported_attachment_ids.add(attachment_id)
    company.supplier_invoices.add(invoice)
    ctx.sandbox.changed(company, "supplier_invoices", invoice, "insert", now, now)
    return ok(ctx.ser.supplier_invoice(invoice), 201)


@operation("GET", "/supplier_invoices", "supplier_invoices")
async def list_supplier_invoices(ctx: Ctx) -> Response:
    page = list_table(
        ctx, ctx.company.supplier_invoices, SUPPLIER_INVOICE_FIELDS, sortable={"date": date_key}
    )
    return ok(page_body(page, ctx.ser.supplier_invoice))


@operation("GET", "/supplier_invoices/{id}", "supplier_invoices")
async def get_supplier_invoice(ctx: Ctx) -> Response:
    invoice = owned(ctx.company.supplier_invoices, ctx.path_id(), "SupplierInvoice")
    return ok(ctx.ser.supplier_invoice(invoice))


@operation("GET", "/supplier_invoices/{supplier_invoice_id}/invoice_lines", "supplier_invoices")
async def list_supplier_invoice_lines(ctx: Ctx) -> Response:
    invoice = owned(
        ctx.company.supplier_invoices, ctx.path_id("supplier_invoice_id"), "SupplierInvoice"
    )
    limit = parse_limit(ctx.query)
    sort = parse_sort(ctx.query, ["id"])
    by_id = {line.id: line for line in invoice.lines}
    page = rules.paginate(
        sorted(by_id), by_id.get, sort=sort, limit=limit, cursor=ctx.query.get("cursor") or None
    )
    return ok(page_body(page, ctx.ser.supplier_invoice_line))
