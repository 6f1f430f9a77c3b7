"""The public Company API v2 handlers (everything under /api/external/v2)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import rules
from .errors import (
    ApiError,
    bad_request,
    conflict,
    error_status,
    not_found,
    parameter_violation,
    schema_violation,
    unprocessable,
)
from .money import ZERO, parse_amount
from .rules import (
    COMPARISON,
    EQUALITY_SETS,
    FilterField,
    Page,
    parse_filter,
    parse_limit,
    parse_sort,
)
from .serializers import JSON, Serializer
from .spec import API_PREFIX, request_validator
from .state import Sandbox, scope_allows
from .store import (
    Address,
    Company,
    Customer,
    Discount,
    FileAttachment,
    LedgerAccount,
    Line,
    Product,
    SalesDocument,
    Supplier,
    SupplierInvoice,
    SupplierInvoiceLine,
    Table,
)

INCLUDED_LINES_CAP = 20  # `include=invoice_lines` embeds at most 20 lines per invoice [SPEC]
ALLOWED_ATTACHMENT_EXTENSIONS = (".pdf", ".png", ".jpg", ".jpeg", ".tiff", ".tif", ".bmp", ".gif")
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


def _date_key(record: Any) -> str:
    return cast(dt.date, record.date).isoformat()


def int_field(
    getter: Callable[[Any], object], ops: frozenset[str] = COMPARISON
) -> FilterField[Any]:
    return FilterField("int", ops, getter)


def str_field(getter: Callable[[Any], object], ops: frozenset[str]) -> FilterField[Any]:
    return FilterField("str", ops, getter)


# ---------------------------------------------------------------- lines of sales documents


def _discount(data: Mapping[str, Any] | None) -> Discount | None:
    if data is None or data.get("value") is None:
        return None
    value = parse_amount(str(data["value"]))
    if value is None:
        raise unprocessable(f"Invalid discount value {data['value']!r}")
    return Discount(cast(Literal["absolute", "relative"], data["type"]), value)


def _dates(data: Mapping[str, Any] | None) -> tuple[dt.date, dt.date] | None:
    if data is None:
        return None
    return dt.date.fromisoformat(data["start_date"]), dt.date.fromisoformat(data["end_date"])


def _check_ledger_account(company: Company, account_id: int | None) -> None:
    if account_id is not None and account_id not in company.ledger_accounts.records:
        raise unprocessable(f"Ledger account {account_id} not found")


def _price(text: object, name: str) -> Decimal:
    value = parse_amount(str(text))
    if value is None:
        raise unprocessable(f"{name} must be a decimal number, got {text!r}")
    return value


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
    _check_ledger_account(company, ledger_account_id)
    line = Line(
        id=sandbox.ids.next("invoice_lines"),
        label=data.get("label", product.label if product else ""),
        description=data.get("description") or "",
        unit=data.get("unit", product.unit if product else None),
        quantity=Decimal(str(data["quantity"])),
        unit_price=_price(
            data.get("raw_currency_unit_price", product.price_before_tax if product else None),
            "raw_currency_unit_price",
        ),
        vat_rate=data.get("vat_rate", product.vat_rate if product else "FR_200"),
        product_id=product.id if product else None,
        ledger_account_id=ledger_account_id,
        discount=_discount(data.get("discount")),
        section_rank=data.get("section_rank"),
        imputation_dates=_dates(data.get("imputation_dates")),
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
        _check_ledger_account(company, data["ledger_account_id"])
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
        line.unit_price = _price(data["raw_currency_unit_price"], "raw_currency_unit_price")
    if "vat_rate" in data:
        line.vat_rate = data["vat_rate"]
    if "discount" in data:
        line.discount = _discount(data["discount"])
    if "section_rank" in data:
        line.section_rank = data["section_rank"]
    if "imputation_dates" in data:
        line.imputation_dates = _dates(data["imputation_dates"])
    line.updated_at = sandbox.now()
    line.reprice()


def _customer_of(company: Company, customer_id: int) -> Customer:
    customer = company.customers.get(customer_id)
    if customer is None:
        raise unprocessable(f"Customer {customer_id} not found")
    return customer


def new_document(
    ctx: Ctx, kind: Literal["customer_invoice", "quote"], data: Mapping[str, Any], record_id: int
) -> SalesDocument:
    _customer_of(ctx.company, data["customer_id"])
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
        discount=_discount(data.get("discount")),
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


# ---------------------------------------------------------------- customer invoices

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
    page = list_table(ctx, ctx.company.invoices, INVOICE_FIELDS, sortable={"date": _date_key})
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
        invoice.discount = _discount(data["discount"])
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
        _customer_of(ctx.company, data["customer_id"])
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


# ---------------------------------------------------------------- quotes


QUOTE_STATUSES = frozenset({"pending", "accepted", "denied", "invoiced", "expired"})
QUOTE_FIELDS: dict[str, FilterField[SalesDocument]] = {
    "id": int_field(lambda r: r.id),
    "customer_id": int_field(lambda r: r.customer_id),
    "status": str_field(lambda r: r.quote_status, EQUALITY_SETS),
}


@operation("GET", "/quotes", "quotes")
async def list_quotes(ctx: Ctx) -> Response:
    page = list_table(ctx, ctx.company.quotes, QUOTE_FIELDS)
    return ok(page_body(page, ctx.ser.quote))


@operation("GET", "/quotes/{id}", "quotes")
async def get_quote(ctx: Ctx) -> Response:
    return ok(ctx.ser.quote(owned(ctx.company.quotes, ctx.path_id(), "Quote")))


@operation("POST", "/quotes", "quotes")
async def create_quote(ctx: Ctx) -> Response:
    data = await ctx.body()
    quote = new_document(ctx, "quote", data, ctx.sandbox.ids.next("quotes"))
    ctx.company.quote_sequence += 1
    quote.number = f"D{quote.date.year}{ctx.company.quote_sequence:04d}"
    ctx.company.quotes.add(quote)
    ctx.sandbox.changed(ctx.company, "quotes", quote, "insert", quote.created_at, quote.updated_at)
    return ok(ctx.ser.quote(quote), 201)


@operation("PUT", "/quotes/{id}/update_status", "quotes")
async def update_quote_status(ctx: Ctx) -> Response:
    quote = owned(ctx.company.quotes, ctx.path_id(), "Quote")
    data = await ctx.body()
    quote.quote_status = data["status"]
    quote.updated_at = ctx.now
    ctx.company.quotes.touched(quote, quote.external_reference)
    ctx.sandbox.changed(ctx.company, "quotes", quote, "update", quote.created_at, quote.updated_at)
    return ok(ctx.ser.quote(quote))


@operation("GET", "/quotes/{quote_id}/invoice_lines", "quotes")
async def list_quote_lines(ctx: Ctx) -> Response:
    quote = owned(ctx.company.quotes, ctx.path_id("quote_id"), "Quote")
    return lines_page(ctx, quote.lines, with_imputation_dates=False)


# ---------------------------------------------------------------- commercial documents

DOCUMENT_FIELDS: dict[str, FilterField[SalesDocument]] = {
    "id": int_field(lambda r: r.id),
    "customer_id": int_field(lambda r: r.customer_id),
    "document_type": str_field(lambda r: r.document_type, EQUALITY_SETS),
}


@operation("GET", "/commercial_documents", "commercial_documents")
async def list_commercial_documents(ctx: Ctx) -> Response:
    page = list_table(ctx, ctx.company.commercial_documents, DOCUMENT_FIELDS)
    return ok(page_body(page, ctx.ser.commercial_document))


@operation("GET", "/commercial_documents/{id}", "commercial_documents")
async def get_commercial_document(ctx: Ctx) -> Response:
    document = owned(ctx.company.commercial_documents, ctx.path_id(), "CommercialDocument")
    return ok(ctx.ser.commercial_document(document))


@operation(
    "GET", "/commercial_documents/{commercial_document_id}/invoice_lines", "commercial_documents"
)
async def list_commercial_document_lines(ctx: Ctx) -> Response:
    document = owned(
        ctx.company.commercial_documents,
        ctx.path_id("commercial_document_id"),
        "CommercialDocument",
    )
    return lines_page(ctx, document.lines, with_imputation_dates=False)


# ---------------------------------------------------------------- products

PRODUCT_FIELDS: dict[str, FilterField[Product]] = {
    "id": int_field(lambda r: r.id),
    "label": str_field(lambda r: r.label, frozenset({"eq", "in"})),
    "reference": str_field(lambda r: r.reference, frozenset({"eq", "in"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS),
}


def _check_unique_reference(
    table: Table[Any], reference: str, own_id: int | None, status: int
) -> None:
    if any(i != own_id for i in table.ids_with_external_reference(reference)):
        raise error_status(status, f"External reference {reference!r} has already been taken")


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
    _check_unique_reference(ctx.company.products, reference, None, 422)
    _check_ledger_account(ctx.company, data.get("ledger_account_id"))
    now = ctx.now
    product = Product(
        id=ctx.sandbox.ids.next("products"),
        label=data["label"],
        description=data.get("description", ""),
        external_reference=reference,
        price_before_tax=_price(data["price_before_tax"], "price_before_tax"),
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
        _check_unique_reference(ctx.company.products, data["external_reference"], product.id, 422)
    if "ledger_account_id" in data:
        _check_ledger_account(ctx.company, data["ledger_account_id"])
    if "price_before_tax" in data:
        product.price_before_tax = _price(data["price_before_tax"], "price_before_tax")
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


# ---------------------------------------------------------------- ledger accounts

LEDGER_FIELDS: dict[str, FilterField[LedgerAccount]] = {
    "id": int_field(lambda r: r.id),
    "number": str_field(lambda r: r.number, frozenset({"start_with", "eq", "in"})),
    "enabled": FilterField("bool", frozenset({"eq"}), lambda r: r.enabled),
}


@operation("GET", "/ledger_accounts", "ledger_accounts")
async def list_ledger_accounts(ctx: Ctx) -> Response:
    page = list_table(
        ctx, ctx.company.ledger_accounts, LEDGER_FIELDS, max_limit=rules.CHANGELOG_MAX_LIMIT
    )
    body = page_body(page, ctx.ser.ledger_account)
    # Cursor mode (the 2026 behaviour): the old page-number keys are present but null.
    return ok(
        {"total_pages": None, "current_page": None, "total_items": None, "per_page": None, **body}
    )


@operation("GET", "/ledger_accounts/{id}", "ledger_accounts")
async def get_ledger_account(ctx: Ctx) -> Response:
    account = owned(ctx.company.ledger_accounts, ctx.path_id(), "LedgerAccount")
    return ok(ctx.ser.ledger_account(account))


def ledger_account_by_number(ctx: Ctx, number: str, label: str) -> int:
    """The id of the account with this number, opening it (as Pennylane does) if it is new."""
    for account in ctx.company.ledger_accounts:
        if account.number == number:
            return account.id
    now = ctx.now
    account = LedgerAccount(
        id=ctx.sandbox.ids.next("ledger_accounts"),
        number=number,
        label=label,
        vat_rate="",
        country_alpha2="FR",
        enabled=True,
        letterable=number.startswith(("401", "411")),
        created_at=now,
        updated_at=now,
    )
    ctx.company.ledger_accounts.add(account)
    return account.id


# ---------------------------------------------------------------- customers

CUSTOMER_FIELDS: dict[str, FilterField[Customer]] = {
    "id": int_field(lambda r: r.id),
    "customer_type": str_field(lambda r: r.customer_type, frozenset({"eq", "not_eq"})),
    "ledger_account_id": int_field(lambda r: r.ledger_account_id, frozenset({"eq", "not_eq"})),
    "name": str_field(lambda r: r.name, frozenset({"start_with", "eq"})),
    "external_reference": str_field(lambda r: r.external_reference, EQUALITY_SETS | {"start_with"}),
    "reg_no": str_field(lambda r: r.reg_no, EQUALITY_SETS),
    "emails": str_field(lambda r: list(r.emails), frozenset({"in"})),
}


def _address(data: Mapping[str, str]) -> Address:
    return Address(data["address"], data["postal_code"], data["city"], data["country_alpha2"])


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
        customer.billing_address = _address(data["billing_address"])
    if "delivery_address" in data:
        customer.delivery_address = _address(data["delivery_address"])
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
    _check_unique_reference(ctx.company.customers, reference, None, 409)
    now = ctx.now
    billing = _address(data["billing_address"])
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
        _check_unique_reference(ctx.company.customers, data["external_reference"], customer.id, 409)
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


# ---------------------------------------------------------------- suppliers

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
        supplier.postal_address = _address(data["postal_address"])
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
    _check_unique_reference(ctx.company.suppliers, reference, None, 409)
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
        _check_unique_reference(ctx.company.suppliers, data["external_reference"], supplier.id, 422)
    _apply_supplier_fields(ctx, supplier, data)
    supplier.updated_at = ctx.now
    ctx.company.suppliers.touched(supplier, previous_reference)
    ctx.sandbox.changed(
        ctx.company, "suppliers", supplier, "update", supplier.created_at, supplier.updated_at
    )
    return ok(ctx.ser.supplier(supplier))


# ---------------------------------------------------------------- file attachments


def files_base(ctx: Ctx) -> str:
    return str(ctx.request.base_url).rstrip("/") + "/_sandbox/files"


@operation("POST", "/file_attachments", "file_attachments")
async def create_file_attachment(ctx: Ctx) -> Response:
    content_type = ctx.request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            400,
            {"message": "The request must be multipart/form-data", "code": "NotAMultipartFile"},
        )
    form = await ctx.request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(
            400, {"message": "file is required", "field": "file", "code": "NotExistRequiredKey"}
        )
    filename_field = form.get("filename")
    filename = filename_field if isinstance(filename_field, str) else (upload.filename or "file")
    if not filename.lower().endswith(ALLOWED_ATTACHMENT_EXTENSIONS):
        raise unprocessable(f"Unsupported file type for {filename!r}")
    content = await upload.read()
    now = ctx.now
    attachment = FileAttachment(
        id=ctx.sandbox.ids.next("file_attachments"),
        filename=filename,
        content=content,
        content_type=upload.content_type or "application/octet-stream",
        created_at=now,
        updated_at=now,
    )
    ctx.company.file_attachments.add(attachment)
    return ok(ctx.ser.file_attachment(attachment, files_base(ctx)), 201)


# ---------------------------------------------------------------- supplier invoices

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
    total = _price(data["currency_amount"], "currency_amount")
    before_tax = _price(data["currency_amount_before_tax"], "currency_amount_before_tax")
    tax = _price(data["currency_tax"], "currency_tax")
    if before_tax + tax != total:
        raise unprocessable("currency_amount must equal currency_amount_before_tax + currency_tax")
    now = ctx.now
    lines: list[SupplierInvoiceLine] = []
    for line in data["invoice_lines"]:
        _check_ledger_account(company, line.get("ledger_account_id"))
        line_total = _price(line["currency_amount"], "invoice_lines.currency_amount")
        line_tax = _price(line["currency_tax"], "invoice_lines.currency_tax")
        lines.append(
            SupplierInvoiceLine(
                id=ctx.sandbox.ids.next("supplier_invoice_lines"),
                label=line.get("label") or (line.get("ledger_entry_line") or {}).get("label", ""),
                description=line.get("description", ""),
                vat_rate=line["vat_rate"],
                currency_amount=line_total,
                currency_tax=line_tax,
                amount=_price(line.get("amount", line_total), "invoice_lines.amount"),
                tax=_price(line.get("tax", line_tax), "invoice_lines.tax"),
                ledger_account_id=line.get("ledger_account_id"),
                imputation_dates=_dates(line.get("imputation_dates")),
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
        amount=_price(data.get("amount", total), "amount"),
        tax=_price(data.get("tax", tax), "tax"),
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
        ctx, ctx.company.supplier_invoices, SUPPLIER_INVOICE_FIELDS, sortable={"date": _date_key}
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


# ---------------------------------------------------------------- changelogs


def _changelog_handler(resource: str) -> Handler:
    async def list_changes(ctx: Ctx) -> Response:
        limit = parse_limit(ctx.query, rules.CHANGELOG_MAX_LIMIT)
        start_date_text = ctx.query.get("start_date")
        cursor = ctx.query.get("cursor")
        if start_date_text and cursor:
            raise bad_request("start_date and cursor cannot be used together")
        changelog = ctx.company.changelogs[resource]
        oldest_retained = ctx.now - ctx.sandbox.config.changelog_retention
        start = changelog.index_from_time(oldest_retained)
        if start_date_text:
            try:
                start_date = dt.datetime.fromisoformat(start_date_text)
            except ValueError:
                raise parameter_violation(
                    "start_date", f"{start_date_text!r} is not a date-time", "InvalidDateTimeFormat"
                ) from None
            if start_date.tzinfo is None:
                start_date = start_date.replace(tzinfo=dt.UTC)
            if start_date < oldest_retained:
                raise unprocessable(
                    "start_date is older than the changelog retention period (4 weeks)"
                )
            start = changelog.index_from_time(start_date)
        elif cursor:
            payload = rules.decode_cursor(cursor)
            after = payload.get("after")
            if payload.get("changelog") != resource or not isinstance(after, int):
                raise bad_request("Invalid cursor")
            start = max(start, changelog.index_after_sequence(after))
        events = changelog.events[start : start + limit + 1]
        has_more = len(events) > limit
        events = events[:limit]
        next_cursor = (
            rules.encode_cursor({"changelog": resource, "after": events[-1].sequence})
            if has_more
            else None
        )
        return ok(
            {
                "items": [ctx.ser.change_event(event) for event in events],
                "has_more": has_more,
                "next_cursor": next_cursor,
            }
        )

    return list_changes


for _resource in (
    "customer_invoices",
    "products",
    "customers",
    "suppliers",
    "supplier_invoices",
    "quotes",
):
    operation("GET", f"/changelogs/{_resource}", _resource)(_changelog_handler(_resource))


# ---------------------------------------------------------------- me


@operation("GET", "/me", None)
async def get_me(ctx: Ctx) -> Response:
    return ok(ctx.ser.me(ctx.company, ctx.sandbox.granted_scopes(ctx.company)))


# ---------------------------------------------------------------- routing

_PARAMETER = re.compile(r"\{(\w+)\}")


def _endpoint(sandbox: Sandbox, op: Operation) -> Callable[[Request], Awaitable[Response]]:
    write = op.method != "GET"

    async def endpoint(request: Request) -> Response:
        company: Company = request.scope[COMPANY_SCOPE_KEY]
        try:
            if op.scope is not None and not scope_allows(company.scopes, op.scope, write=write):
                needed = f"{op.scope}:all" if write else f"{op.scope}:readonly"
                raise error_status(403, f'Access to this resource requires scope "{needed}".')
            api = str(request.base_url).rstrip("/") + API_PREFIX
            ctx = Ctx(request, sandbox, company, Serializer(api), op.path)
            return await op.handler(ctx)
        except ApiError as error:
            return ok(error.body, error.status)

    return endpoint


def api_routes(sandbox: Sandbox) -> list[Route]:
    """Starlette routes for every served operation; literal paths come before `{id}` ones."""
    ordered = sorted(OPERATIONS, key=lambda op: "{" in op.path.split("/")[-1])
    return [
        Route(
            API_PREFIX + _PARAMETER.sub(r"{\1:int}", op.path),
            _endpoint(sandbox, op),
            methods=[op.method],
        )
        for op in ordered
    ]


def served_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation the sandbox serves, paths as in openapi.json."""
    return [(op.method, op.path) for op in OPERATIONS]


__all__ = ["api_routes", "served_operations"]
