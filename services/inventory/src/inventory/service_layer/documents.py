"""Applying Pennylane document events to stock (walking skeleton: finalized invoices only).

The full rules of PRODUCT.md (versions by difference, settings modes, quotes, credit notes)
replace this with the domain model; the delivery guarantees around it stay as they are.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads.documents import DocumentKind, DocumentVersionRead

from inventory.service_layer.stock_moves import StockMove, apply_stock_move

DEFAULT_LOCATION = "default"


async def apply_document_event(
    session: AsyncSession, event: Envelope[Payload], *, topic_prefix: str
) -> None:
    document = event.payload
    if not isinstance(document, DocumentVersionRead):
        return
    if document.draft or document.kind is not DocumentKind.INVOICE:
        return
    for line in document.lines:
        if line.product is None or line.product.is_service:
            continue
        await apply_stock_move(
            session,
            event.tenant_id,
            StockMove(
                product_id=f"pl:{line.product.pennylane_id}",
                location_id=DEFAULT_LOCATION,
                delta_real=-line.quantity,
                cause=f"invoice:{document.pennylane_id}:line:{line.pennylane_line_id}",
                pennylane_product_id=line.product.pennylane_id,
            ),
            topic_prefix=topic_prefix,
            caused_by=event.meta,
        )
