"""Quotes: `/quotes`."""

from __future__ import annotations

from starlette.responses import Response

from ..rules import EQUALITY_SETS, FilterField
from ..store import SalesDocument
from .common import Ctx, int_field, list_table, ok, operation, owned, page_body, str_field
from .lines import lines_page, new_document

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
