"""Commercial documents (purchase orders and the like): `/commercial_documents`, read-only."""

from __future__ import annotations

from starlette.responses import Response

from ..rules import EQUALITY_SETS, FilterField
from ..store import SalesDocument
from .common import Ctx, int_field, list_table, ok, operation, owned, page_body, str_field
from .lines import lines_page

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
