"""Building the sync report: document labels, Stockpit numbers, a hint per problem kind, and the
one-sentence summary a shop owner reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from inventory.domain import report
from inventory.domain.documents import DocumentKind, SourceDocument
from inventory.domain.report import DocumentLabel, ProblemRecord, ProductLabel

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _record(kind: str, **fields: object) -> ProblemRecord:
    values: dict[str, object] = {
        "problem_id": 7,
        "kind": kind,
        "reported_at": T0,
        "reason": "real stock is -2 at location L after document invoice:42",
        "subject_kind": "product",
        "subject_id": str(uuid4()),
        "product_id": None,
        "location_id": None,
        "document_reference": None,
        "acknowledged_at": None,
    }
    values.update(fields)
    return ProblemRecord(**values)  # type: ignore[arg-type]


def test_document_labels_name_the_number_and_date_or_say_there_is_none() -> None:
    numbered = DocumentLabel("invoice:42", "F-2026-0042", date(2026, 11, 2))
    assert numbered.describe() == "invoice F-2026-0042 of 2026-11-02"
    assert (numbered.kind, numbered.pennylane_id) == ("invoice", "42")
    assert DocumentLabel("credit_note:9", None, None).describe() == (
        "credit note #9 (Pennylane id)"
    )
    assert report.is_document_reference("purchase_order:5")
    assert not report.is_document_reference(str(uuid4()))
    assert not report.is_document_reference(None)


def test_an_orders_primary_document_is_its_invoice() -> None:
    def source(kind: DocumentKind, pennylane_id: int, minute: int) -> SourceDocument:
        return SourceDocument(
            kind,
            pennylane_id,
            T0 + timedelta(minutes=minute),
            "f",
            False,
            False,
            (),
            number=f"N{pennylane_id}",
            issued_on=date(2026, 11, 1),
        )

    order = source(DocumentKind.PURCHASE_ORDER, 1, 0)
    invoice = source(DocumentKind.INVOICE, 2, 5)
    assert report.primary_source([order, invoice]) is invoice
    assert report.primary_source([order]) is order
    assert report.primary_source([]) is None
    assert report.source_label(invoice) == DocumentLabel("invoice:2", "N2", date(2026, 11, 1))


def test_stockpit_numbers_of_delivery_notes_and_receipts() -> None:
    note = UUID("0a1b2c3d-0000-4000-8000-000000000000")
    assert report.delivery_note_number(note) == "BL-0A1B2C3D"
    assert report.receipt_number(note) == "BR-0A1B2C3D"


def test_every_kind_of_problem_has_its_own_hint() -> None:
    kinds = [
        report.NEGATIVE_STOCK,
        report.CONFLICT,
        report.UNKNOWN_REFERENCE,
        report.LIKELY_DUPLICATE,
        report.WRITE_FAILED,
        report.TOKEN_REJECTED,
    ]
    hints = [report.hint_for(kind) for kind in kinds]
    assert len(set(hints)) == len(kinds)
    assert report.DEFAULT_HINT not in hints
    assert "stockpit count" in report.hint_for(report.NEGATIVE_STOCK)
    assert "new token" in report.hint_for(report.TOKEN_REJECTED)
    assert report.hint_for("something_new") == report.DEFAULT_HINT


def test_a_negative_stock_problem_reads_as_one_sentence_naming_product_place_and_invoice() -> None:
    product_id, location_id = str(uuid4()), str(uuid4())
    view = report.problem_view(
        _record(
            report.NEGATIVE_STOCK,
            product_id=product_id,
            location_id=location_id,
            document_reference="invoice:42",
        ),
        product=ProductLabel("Chaise pliante", "CH-1"),
        location_name="Principal",
        document=DocumentLabel("invoice:42", "F-2026-0042", date(2026, 11, 2)),
    )
    assert view.summary == (
        "negative stock Chaise pliante (CH-1) at Principal after invoice F-2026-0042 of 2026-11-02"
    )
    assert view.hint == report.hint_for(report.NEGATIVE_STOCK)
    assert (view.product_name, view.sku, view.location_name) == (
        "Chaise pliante",
        "CH-1",
        "Principal",
    )
    assert view.acknowledged_at is None


def test_a_problem_without_product_or_document_still_reads() -> None:
    view = report.problem_view(
        _record(report.TOKEN_REJECTED, subject_kind="connection", subject_id="shop"),
        product=None,
        location_name=None,
        document=None,
    )
    assert view.summary == "token rejected"
    assert view.product_name is None
    assert view.document is None
    assert report.token_rejected_reason("GET /customer_invoices -> 401") == (
        "Pennylane refused the token: GET /customer_invoices -> 401"
    )
