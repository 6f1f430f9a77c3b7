"""Customer invoices and credit notes: `/customer_invoices` and its actions."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Literal

from starlette.responses import Response

from .. import rules
from ..errors import bad_request, unprocessable
from ..rules import COMPARISON, EQUALITY_SETS, FilterField
from ..serializers import JSON
from ..store import SalesDocument
from .common import (
    Ctx,
    date_key,
    discount_from,
    int_field,
    list_table,
    ok,
    operation,
    owned,
    page_body,
    str_field,
)
from .lines import build_line, customer_of, lines_page, new_document, update_line

INCLUDED_LINES_CAP = 20  # `include=invoice_lines` embeds at most 20 lines per invoice [SPEC]

INVOICE_FIELDS: dict[str, FilterField[SalesDocument]] = {
    "id": int_field(lambda r: r.id),
    "date": FilterField("date", COMPARISON, lambda r: r.date),
    "customer_id": int_field(lambda r: r.customer_id),
    "billing_subscription_id": int_field(lambda r: None),
    "quote_id": int_field(lambda r: r.quote_id),
    "invoice_number": str_field(lambda r: r.number, EQUALITY_SETS),
    "draft": FilterField("bool", frozenset({"eq"}), lambda r: r.draft),
    "credit_note": FilterField("bool", frozenset({"eq"}), lambda r: r.is_credit_note),
    "external_reference": str_field(lambda r: r.external_reference, frozenset({"eq"})),
    "category_id": int_field(lambda r: None, frozenset({"in"})),
}


def _invoice(ctx: Ctx, invoice: SalesDocument) -> JSON:
    return ctx.ser.customer_invoice(invoice, ctx.sandbox.today())


def _finalize(ctx: Ctx, invoice: SalesDocument) -> None:
    company = ctx.company
    last = company.last_finalized_date
    if ctx.sandbox.config.enforce_chronological_finalization and last and invoice.date < last:
        raise unprocessable(
            f"The invoice date {invoice.date} is before the last finalized invoice ({last})"
        )
    company.invoice_sequence += 1
    invoice.number = f"F{invoice.date.year}{company.invoice_sequence:04d}"
    invoice.draft = False
    invoice.finalized_at = ctx.now
    company.last_finalized_date = max(filter(None, (last, invoice.date)))


def _invoice_changed(
    ctx: Ctx, invoice: SalesDocument, operation: Literal["insert", "update", "delete"]
) -> None:
    ctx.sandbox.changed(
        ctx.company, "customer_invoices", invoice, operation, invoice.created_at, invoice.updated_at
    )


def _check_unique_invoice_reference(ctx: Ctx, reference: str, own_id: int | None) -> None:
    if any(i != own_id for i in ctx.company.invoices.ids_with_external_reference(reference)):
        raise unprocessable(f"External reference {reference!r} has already been taken")


@operation("GET", "/customer_invoices", "customer_invoices")
async def list_customer_invoices(ctx: Ctx) -> Response:
    include = ctx.query.get("include")
    if include not in (None, "", "invoice_lines"):
        raise bad_request(f"Invalid include {include!r}; only 'invoice_lines' is supported")
    page = list_table(ctx, ctx.company.invoices, INVOICE_FIELDS, sortable={"date": date_key})
    body = page_body(page, lambda invoice: _invoice(ctx, invoice))
    if include == "invoice_lines":
        included: JSON = {}
        for invoice in page.items:
            embedded = invoice.lines[:INCLUDED_LINES_CAP]
            more = len(invoice.lines) > INCLUDED_LINES_CAP
            next_url = None
            if more:
                cursor = rules.encode_cursor({"sort": "id", "after": embedded[-1].id})
                next_url = (
                    f"{ctx.ser.api}/customer_invoices/{invoice.id}/invoice_lines"
                    f"?sort=id&cursor={cursor}"
                )
            included[str(invoice.id)] = {
                "items": [ctx.ser.line(line, with_imputation_dates=True) for line in embedded],
                "has_more": more,
                "next_url": next_url,
            }
        body["included"] = {"invoice_lines": included}
    return ok(body)


@operation("GET", "/customer_invoices/{id}", "customer_invoices")
async def get_customer_invoice(ctx: Ctx) -> Response:
    return ok(_invoice(ctx, owned(ctx.company.invoices, ctx.path_id(), "CustomerInvoice")))


@operation("POST", "/customer_invoices", "customer_invoices")
async def create_customer_invoice(ctx: Ctx) -> Response:
    data = await ctx.body()
    if "external_reference" in data:
        _check_unique_invoice_reference(ctx, data["external_reference"], None)
    invoice = new_document(ctx, "customer_invoice", data, ctx.sandbox.ids.next("customer_invoices"))
    if not invoice.draft:
        _finalize(ctx, invoice)
    ctx.company.invoices.add(invoice)
    _invoice_changed(ctx, invoice, "insert")
    return ok(_invoice(ctx, invoice), 201)


@operation("POST", "/customer_invoices/create_from_quote", "customer_invoices")
async def create_customer_invoice_from_quote(ctx: Ctx) -> Response:
    data = await ctx.body()
    quote = ctx.company.quotes.get(data["quote_id"])
    if quote is None:
        raise unprocessable(f"Quote {data['quote_id']} not found")
    if "external_reference" in data:
        _check_unique_invoice_reference(ctx, data["external_reference"], None)
    now = ctx.now
    lines = []
    for source in quote.lines:
        line = dataclasses.replace(
            source, id=ctx.sandbox.ids.next("invoice_lines"), created_at=now, updated_at=now
        )
        lines.append(line)
    invoice = SalesDocument(
        id=ctx.sandbox.ids.next("customer_invoices"),
        kind="customer_invoice",
        customer_id=quote.customer_id,
        date=ctx.sandbox.today(),
        deadline=ctx.sandbox.today() + (quote.deadline - quote.date),
        lines=lines,
        external_reference=data.get("external_reference") or str(uuid.uuid4()),
        created_at=now,
        updated_at=now,
        label=quote.label,
        currency=quote.currency,
        language=quote.language,
        discount=quote.discount,
        template_id=data.get("customer_invoice_template_id"),
        draft=bool(data["draft"]),
        quote_id=quote.id,
    )
    if not invoice.draft:
        _finalize(ctx, invoice)
    ctx.company.invoices.add(invoice)
    _invoice_changed(ctx, invoice, "insert")
    quote.quote_status = "invoiced"
    quote.updated_at = now
    ctx.sandbox.changed(ctx.company, "quotes", quote, "update", quote.created_at, now)
    return ok(_invoice(ctx, invoice), 201)


FINALIZED_EDITABLE = frozenset(
    {"label", "transaction_reference", "external_reference", "invoice_lines"}
)


def _refuse_finalized_edit(data: Mapping[str, Any], line_changes: Mapping[str, Any]) -> None:
    """A finalized invoice is a legal document: only annotations may still change."""
    frozen = set(data) - FINALIZED_EDITABLE
    line_edits = [
        set(change) - {"id", "imputation_dates"} for change in line_changes.get("update", [])
    ]
    if frozen or set(line_changes) - {"update"} or any(line_edits):
        raise unprocessable("A finalized invoice cannot be edited; issue a credit note instead")


def _change_invoice_lines(
    ctx: Ctx, invoice: SalesDocument, line_changes: Mapping[str, Any]
) -> None:
    lines_by_id = {line.id: line for line in invoice.lines}
    for change in line_changes.get("update", []):
        line = lines_by_id.get(change["id"])
        if line is None:
            raise unprocessable(f"Invoice line {change['id']} not found on this invoice")
        update_line(ctx.sandbox, ctx.company, line, change)
    deleted = {change["id"] for change in line_changes.get("delete", [])}
    missing = deleted - set(lines_by_id)
    if missing:
        raise unprocessable(f"Invoice lines {sorted(missing)} not found on this invoice")
    new_lines = [
        build_line(ctx.sandbox, ctx.company, line) for line in line_changes.get("create", [])
    ]
    invoice.lines = [line for line in invoice.lines if line.id not in deleted] + new_lines
    if not invoice.lines:
        raise unprocessable("invoice_lines can't be blank")


INVOICE_TEXT_FIELDS = (
    "label",
    "special_mention",
    "pdf_description",
    "language",
    "currency",
    "external_reference",
    "transaction_reference",
)


def _change_invoice_fields(invoice: SalesDocument, data: Mapping[str, Any]) -> None:
    for name in INVOICE_TEXT_FIELDS:
        if name in data:
            setattr(invoice, name, data[name])
    for name in ("pdf_invoice_free_text", "pdf_invoice_subject"):
        if name in data:
            setattr(invoice, name, data[name] or "")
    if "date" in data:
        invoice.date = dt.date.fromisoformat(data["date"])
    if "deadline" in data:
        invoice.deadline = dt.date.fromisoformat(data["deadline"])
    if "discount" in data:
        invoice.discount = discount_from(data["discount"])
    if "customer_invoice_template_id" in data:
        invoice.template_id = data["customer_invoice_template_id"]


@operation("PUT", "/customer_invoices/{id}", "customer_invoices")
async def update_customer_invoice(ctx: Ctx) -> Response:
    stored = owned(ctx.company.invoices, ctx.path_id(), "CustomerInvoice")
    data = await ctx.body()
    # Work on a copy so that a 422 half-way leaves the stored invoice untouched.
    invoice = copy.deepcopy(stored)
    previous_reference = invoice.external_reference
    if "external_reference" in data:
        _check_unique_invoice_reference(ctx, data["external_reference"], invoice.id)
    line_changes: Mapping[str, Any] = data.get("invoice_lines") or {}
    if not invoice.draft:
        _refuse_finalized_edit(data, line_changes)
    _change_invoice_lines(ctx, invoice, line_changes)
    if "customer_id" in data:
        customer_of(ctx.company, data["customer_id"])
        invoice.customer_id = data["customer_id"]
    _change_invoice_fields(invoice, data)
    invoice.updated_at = ctx.now
    ctx.company.invoices.records[invoice.id] = invoice
    ctx.company.invoices.touched(invoice, previous_reference)
    _invoice_changed(ctx, invoice, "update")
    return ok(_invoice(ctx, invoice))


@operation("DELETE", "/customer_invoices/{id}", "customer_invoices")
async def delete_customer_invoice(ctx: Ctx) -> Response:
    invoice = owned(ctx.company.invoices, ctx.path_id(), "CustomerInvoice")
    if not invoice.draft:
        raise unprocessable("Only draft invoices can be deleted")
    ctx.company.invoices.remove(invoice)
    invoice.updated_at = ctx.now
    _invoice_changed(ctx, invoice, "delete")
    return Response(status_code=204)


@operation("PUT", "/customer_invoices/{id}/finalize", "customer_invoices")
async def finalize_customer_invoice(ctx: Ctx) -> Response:
    invoice = owned(ctx.company.invoices, ctx.path_id(), "CustomerInvoice")
    if not invoice.draft:
        raise unprocessable("This invoice is already finalized")
    _finalize(ctx, invoice)
    invoice.updated_at = ctx.now
    ctx.company.invoices.touched(invoice, invoice.external_reference)
    _invoice_changed(ctx, invoice, "update")
    return ok(_invoice(ctx, invoice))


@operation("POST", "/customer_invoices/{id}/link_credit_note", "customer_invoices")
async def link_credit_note(ctx: Ctx) -> Response:
    invoice = owned(ctx.company.invoices, ctx.path_id(), "CustomerInvoice")
    data = await ctx.body()
    credit_note = ctx.company.invoices.get(data["credit_note_id"])
    if credit_note is None:
        raise unprocessable(f"Credit note {data['credit_note_id']} not found")
    if invoice.draft or invoice.is_credit_note:
        raise unprocessable("Credit notes can only be linked to a finalized invoice")
    if credit_note.draft or not credit_note.is_credit_note:
        raise unprocessable(f"{credit_note.id} is not a finalized credit note")
    if credit_note.customer_id != invoice.customer_id:
        raise unprocessable("The credit note and the invoice have different customers")
    if credit_note.credited_invoice_id not in (None, invoice.id):
        raise unprocessable("This credit note is already linked to another invoice")
    credit_note.credited_invoice_id = invoice.id
    credit_note.updated_at = ctx.now
    ctx.company.invoices.touched(credit_note, credit_note.external_reference)
    _invoice_changed(ctx, credit_note, "update")
    return ok(_invoice(ctx, credit_note))


@operation("GET", "/customer_invoices/{customer_invoice_id}/invoice_lines", "customer_invoices")
async def list_customer_invoice_lines(ctx: Ctx) -> Response:
    invoice = owned(ctx.company.invoices, ctx.path_id("customer_invoice_id"), "CustomerInvoice")
    return lines_page(ctx, invoice.lines, with_imputation_dates=True)
