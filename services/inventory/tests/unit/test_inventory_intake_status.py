"""Pennylane's document status reaches the domain, and the decision about it holds there:
an invoice's "cancelled" and a purchase order's "archived" (the poller's mapping of
`archived_at`) are kept on the stored document and move no stock (issue 14, item 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from inventory.domain.catalog import Location
from inventory.domain.pennylane_import import apply_pennylane_document
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import Effect
from inventory.service_layer.pennylane_intake import document_version
from stockpit_contracts.payloads.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersionRead,
    ProductRef,
)

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _read(kind: DocumentKind, minute: int, status: str | None) -> DocumentVersionRead:
    return DocumentVersionRead(
        kind=kind,
        pennylane_id=1,
        draft=False,
        status=status,
        updated_at=T0 + timedelta(minutes=minute),
        lines=(
            DocumentLine(
                pennylane_line_id=1,
                label="Chaise",
                quantity=Decimal(5),
                product=ProductRef(pennylane_id=7, label="Chaise", ledger_account_number="707000"),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("kind", "status", "mode_on"),
    [
        (DocumentKind.INVOICE, "cancelled", False),
        (DocumentKind.INVOICE, "cancelled", True),
        (DocumentKind.PURCHASE_ORDER, "archived", False),
        (DocumentKind.PURCHASE_ORDER, "archived", True),
    ],
)
def test_a_cancelled_or_archived_status_is_kept_and_moves_no_stock(
    kind: DocumentKind, status: str, mode_on: bool
) -> None:
    location = Location.create("t", "Main")
    settings = TenantSettings("t", location.location_id, delivery_notes_update_real_stock=mode_on)
    first = apply_pennylane_document(
        settings, document_version("t", _read(kind, 0, "upcoming")), T0, products={}
    )
    assert first.order is not None
    products = {p.pennylane_id: p for p in first.new_products if p.pennylane_id is not None}
    expected = Effect(reserved=Decimal(5)) if mode_on else Effect(real=Decimal(-5))
    assert list(first.order.applied.values()) == [expected]

    version = document_version("t", _read(kind, 1, status))
    assert version.status == status
    then = apply_pennylane_document(settings, version, T0, products=products, order=first.order)
    assert then.applied
    assert then.outcome.movements == []
    assert then.order is not None
    assert then.order.sources[version.reference].status == status
    assert list(then.order.applied.values()) == [expected]
