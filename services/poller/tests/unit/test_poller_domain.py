"""Pure parts of the poller: mapping Pennylane records to events, watermarks, scheduling."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from poller.domain.mapping import (
    CustomerSnapshot,
    ProductSnapshot,
    customer_upserted,
    invoice_kind,
    invoice_version,
    product_upserted,
    purchase_order_version,
)
from poller.domain.schedule import (
    TenantSchedule,
    claim_priority,
    is_due,
    lease_is_free,
    next_run_after_failure,
    next_run_after_success,
    request_left_after,
    should_claim,
)
from poller.domain.watermarks import (
    ChangeSet,
    Phase,
    StreamState,
    purchase_order_changes,
)
from stockpit_contracts.payloads.documents import DocumentKind
from stockpit_pennylane.client.models import (
    ChangelogEvent,
    CommercialDocument,
    CompanyCustomer,
    CustomerInvoice,
    CustomerInvoiceLine,
    Product,
)

T0 = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
ADDRESS = {"address": "1 rue", "postal_code": "75001", "city": "Paris", "country_alpha2": "FR"}


def _amounts(total: str) -> dict[str, Any]:
    return {
        "currency": "EUR",
        "amount": total,
        "currency_amount": total,
        "currency_amount_before_tax": total,
        "exchange_rate": "1",
        "currency_tax": "0",
        "tax": "0",
        "language": "fr_FR",
        "date": "2026-11-02",
        "deadline": "2026-12-02",
        "public_file_url": None,
        "filename": None,
        "special_mention": None,
        "pdf_invoice_free_text": "",
        "pdf_invoice_subject": "",
        "pdf_description": None,
        "external_reference": "x",
        "archived_at": None,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "invoice_lines": {"url": "u"},
        "label": None,
    }


def _invoice(
    total: str = "120", status: str = "upcoming", credited: int | None = None, **kw: Any
) -> CustomerInvoice:
    data = {
        **_amounts(total),
        "id": 10,
        "invoice_number": "F1",
        "paid": False,
        "status": status,
        "discount": {"type": "absolute", "value": "0"},
        "ledger_entry": {"id": 1},
        "remaining_amount_with_tax": None,
        "remaining_amount_without_tax": None,
        "draft": False,
        "customer": {"id": 5, "url": "u"},
        "billing_subscription": None,
        "credited_invoice": None if credited is None else {"id": credited, "url": "u"},
        "customer_invoice_template": None,
        "transaction_reference": None,
        "quote": {"id": 77},
        "e_invoicing": None,
        **kw,
    }
    return CustomerInvoice.model_validate(data)


def _line(line_id: int, quantity: str, product_id: int | None) -> CustomerInvoiceLine:
    return CustomerInvoiceLine.model_validate(
        {
            "id": line_id,
            "label": "Chaise",
            "unit": "piece",
            "quantity": quantity,
            "amount": "12",
            "currency_amount": "12",
            "description": "",
            "product": None if product_id is None else {"id": product_id, "url": "u"},
            "vat_rate": "FR_200",
            "currency_amount_before_tax": "10",
            "currency_tax": "2",
            "tax": "2",
            "raw_currency_unit_price": "10",
            "discount": {"type": "absolute", "value": "0"},
            "section_rank": None,
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            "imputation_dates": None,
        }
    )


PRODUCTS = {7: ProductSnapshot(7, "Chaise", "SKU-7", "707000", "piece")}
CUSTOMERS = {5: CustomerSnapshot(5, "Client 5", "company", ("c@example.com",))}


def test_credit_notes_are_told_from_invoices() -> None:
    assert invoice_kind(_invoice()) is DocumentKind.INVOICE
    assert invoice_kind(_invoice(status="credit_note", total="-10")) is DocumentKind.CREDIT_NOTE
    assert invoice_kind(_invoice(credited=3)) is DocumentKind.CREDIT_NOTE
    # A draft credit note has only its negative amounts to show what it is.
    assert (
        invoice_kind(_invoice(status="draft", total="-10", draft=True)) is DocumentKind.CREDIT_NOTE
    )


def test_an_invoice_version_carries_lines_customer_quote_and_products() -> None:
    lines = [_line(1, "3", 7), _line(2, "1", None), _line(3, "2", 8)]
    version = invoice_version(_invoice(), lines, PRODUCTS, CUSTOMERS)
    assert version.kind is DocumentKind.INVOICE
    assert version.quote_id == 77
    assert version.customer is not None
    assert version.customer.name == "Client 5"
    assert [line.quantity for line in version.lines] == [Decimal(3), Decimal(1), Decimal(2)]
    assert version.lines[0].product is not None
    assert version.lines[0].product.ledger_account_number == "707000"
    assert version.lines[1].product is None, "a free-text line names no product"
    assert version.lines[2].product is not None
    assert version.lines[2].product.pennylane_id == 8
    assert version.updated_at == T0


def test_a_purchase_order_version() -> None:
    data = {
        **_amounts("50"),
        "id": 31,
        "document_number": "BC1",
        "document_type": "purchasing_order",
        "discount": {"type": "absolute", "value": None},
        "customer": {"id": 5, "url": "u"},
        "quote": None,
        "commercial_document_template": None,
    }
    document = CommercialDocument.model_validate(data)
    version = purchase_order_version(document, [_line(1, "4", 7)], PRODUCTS, CUSTOMERS)
    assert version.kind is DocumentKind.PURCHASE_ORDER
    assert version.draft is False
    assert version.lines[0].quantity == Decimal(4)


def test_products_and_customers_map_to_catalog_events() -> None:
    product = Product.model_validate(
        {
            "id": 7,
            "label": "Pose",
            "description": "",
            "external_reference": "e",
            "price_before_tax": "10.50",
            "vat_rate": "FR_200",
            "price": "12.6",
            "unit": "piece",
            "currency": "EUR",
            "reference": "SKU",
            "ledger_account": {"id": 3},
            "archived_at": None,
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
        }
    )
    event = product_upserted(product, "706000")
    assert event.is_service
    assert event.price_before_tax == Decimal("10.50")
    customer = CompanyCustomer.model_validate(
        {
            "id": 5,
            "name": "ACME",
            "billing_iban": None,
            "payment_conditions": "30_days",
            "recipient": "",
            "phone": "",
            "reference": None,
            "notes": None,
            "ledger_account": None,
            "emails": ["a@acme.test"],
            "billing_address": ADDRESS,
            "delivery_address": ADDRESS,
            "external_reference": "e",
            "billing_language": "fr_FR",
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            "customer_type": "company",
            "vat_number": "",
            "reg_no": "",
        }
    )
    upserted = customer_upserted(customer)
    assert upserted.kind == "company"
    assert upserted.emails == ("a@acme.test",)
    assert upserted.billing_address is not None
    assert upserted.billing_address.city == "Paris"


def _event(record_id: int, operation: str, minute: int) -> ChangelogEvent:
    moment = (T0 + dt.timedelta(minutes=minute)).isoformat()
    return ChangelogEvent.model_validate(
        {
            "id": record_id,
            "operation": operation,
            "processed_at": moment,
            "updated_at": moment,
            "created_at": moment,
        }
    )


def test_a_changelog_page_keeps_each_records_last_operation() -> None:
    changes = ChangeSet.from_events(
        [
            _event(1, "insert", 0),
            _event(2, "insert", 1),
            _event(1, "update", 2),
            _event(2, "delete", 3),
            _event(3, "delete", 4),
            _event(3, "insert", 5),
        ]
    )
    assert changes.upserted_ids == (1, 3)
    assert changes.deleted_ids == (2,)
    assert changes.newest_processed_at == T0 + dt.timedelta(minutes=5)
    assert ChangeSet.from_events([]).newest_processed_at is None


def test_stream_watermarks_move_forward_only_and_expiry_restarts() -> None:
    state = StreamState().scan_started(T0)
    assert state.phase is Phase.SCANNING
    assert state.changelog_from == T0
    state = state.scanned_through(40).scanned_through(20)
    assert state.after_id == 40, "a restart never goes back below what was committed"
    state = state.scan_finished()
    assert state.phase is Phase.FOLLOWING
    assert state.changelog_from == T0
    later = T0 + dt.timedelta(hours=1)
    at_later = _event(7, "update", 60)
    assert state.followed_through([at_later]).changelog_from == later
    assert state.followed_through([at_later]).followed_through([_event(8, "update", 0)]) == (
        state.followed_through([at_later])
    ), "an older event moves nothing"
    assert state.followed_through([]) == state
    assert (
        StreamState()
        .scan_started(None)
        .scan_finished()
        .followed_through([_event(1, "insert", 0)])
        .changelog_from
        == T0
    )
    assert state.changelog_expired() == StreamState()


def test_events_at_the_watermark_instant_are_skipped_once_handled() -> None:
    """Pennylane's start_date is inclusive: the newest events come back on every read."""
    state = StreamState().scan_started(None).scan_finished()
    page = [_event(1, "insert", 0), _event(2, "update", 5), _event(3, "update", 5)]
    state = state.followed_through([e for e in page if state.is_new(e)])
    assert state.changelog_from == T0 + dt.timedelta(minutes=5)
    assert state.seen_at_watermark == {2, 3}
    # The next read starts at minute 5: events 2 and 3 again, plus one that arrived late at the
    # same instant and one after it.
    again = [_event(2, "update", 5), _event(3, "update", 5), _event(4, "insert", 5)]
    assert [e.id for e in again if state.is_new(e)] == [4]
    same_instant = state.followed_through([_event(4, "insert", 5)])
    assert same_instant.seen_at_watermark == {2, 3, 4}
    moved = same_instant.followed_through([_event(2, "update", 6)])
    assert moved.seen_at_watermark == {2}
    assert moved.is_new(_event(3, "update", 6)) is True
    assert StreamState().scan_started(T0, [9]).scan_finished().is_new(_event(9, "update", 0)) is (
        False
    ), "a record changed at the scan's resume point was read by the scan"


def test_the_scans_start_is_kept_until_the_changelog_passes_it() -> None:
    """The follow after a first scan leaves out what the scan left out on purpose, also when
    a later run resumes it (the start is part of the committed state), until the changelog
    has passed the scan's start."""
    started = T0 + dt.timedelta(minutes=2)
    state = StreamState().scan_started(T0, (), started).scanned_through(10).scan_finished()
    assert state.phase is Phase.FOLLOWING
    assert state.scan_started_at == started
    within_margin = state.followed_through([_event(1, "update", 1)])
    assert within_margin.scan_started_at == started, "still before the scan's start"
    assert within_margin.followed_through([_event(2, "update", 2)]).scan_started_at is None
    assert state.changelog_expired().scan_started_at is None


def test_purchase_order_rescan_finds_changed_and_deleted_within_its_window() -> None:
    later = T0 + dt.timedelta(minutes=1)
    known = {1: T0, 5: T0, 6: T0, 7: T0, 9: T0}
    window = [(9, T0), (7, later), (5, T0)]
    changes = purchase_order_changes(window, known, window_is_complete=False)
    assert changes.changed_ids == (7,)
    assert changes.deleted_ids == (6,), "1 is below the window: unknown, not deleted"
    complete = purchase_order_changes(window, known, window_is_complete=True)
    assert complete.deleted_ids == (1, 6)
    assert purchase_order_changes([], known, window_is_complete=False).deleted_ids == ()
    assert purchase_order_changes([], known, window_is_complete=True).deleted_ids == (1, 5, 6, 7, 9)


def _schedule(**kw: Any) -> TenantSchedule:
    values: dict[str, Any] = {
        "tenant_id": "t",
        "active": True,
        "next_due_at": T0,
        "requested_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_version": 0,
    }
    return TenantSchedule(**(values | kw))


def test_scheduling_decisions() -> None:
    before, after = T0 - dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=1)
    assert not is_due(_schedule(), before)
    assert is_due(_schedule(), T0)
    assert is_due(_schedule(requested_at=before), before), "import-now does not wait"
    assert not is_due(_schedule(active=False, requested_at=before), after), "disconnected"
    held = _schedule(lease_owner="other", lease_expires_at=T0)
    assert not lease_is_free(held, before)
    assert not should_claim(held, before, frozenset())
    assert lease_is_free(held, T0), "a dead replica's lease expires"
    assert should_claim(held, after, frozenset())
    assert not should_claim(_schedule(), after, frozenset({"t"})), "already running here"


def test_claim_order_is_most_overdue_first() -> None:
    synced = T0 - dt.timedelta(minutes=10)
    schedules = [
        _schedule(
            tenant_id="late-1s", next_due_at=T0 - dt.timedelta(seconds=1), last_started_at=synced
        ),
        _schedule(
            tenant_id="late-5m", next_due_at=T0 - dt.timedelta(minutes=5), last_started_at=synced
        ),
        _schedule(
            tenant_id="late-1m", next_due_at=T0 - dt.timedelta(minutes=1), last_started_at=synced
        ),
        _schedule(
            tenant_id="import-now-2m",
            next_due_at=T0 + dt.timedelta(minutes=20),
            requested_at=T0 - dt.timedelta(minutes=2),
            last_started_at=synced,
        ),
    ]
    ordered = [s.tenant_id for s in sorted(schedules, key=claim_priority)]
    assert ordered == ["late-5m", "import-now-2m", "late-1m", "late-1s"]


def test_a_first_sync_never_waits_behind_tenants_already_synced() -> None:
    synced = T0 - dt.timedelta(hours=1)
    overdue = [
        _schedule(
            tenant_id=f"old-{i:04d}",
            next_due_at=T0 - dt.timedelta(minutes=30, seconds=i),
            last_started_at=synced,
        )
        for i in range(1000)
    ]
    # Connected just now (due now), while a thousand tenants are half an hour late.
    new = _schedule(tenant_id="new", next_due_at=T0, requested_at=T0)
    first_slots = sorted([*overdue, new], key=claim_priority)[:2]
    assert first_slots[0].tenant_id == "new"
    assert first_slots[1].tenant_id == "old-0999", "then the most overdue"


def test_next_runs() -> None:
    assert next_run_after_success(T0, T0 + dt.timedelta(seconds=2), 30) == T0 + dt.timedelta(
        seconds=30
    )
    # A sync longer than its interval still leaves the minimum gap.
    assert next_run_after_success(T0, T0 + dt.timedelta(minutes=5), 30) == T0 + dt.timedelta(
        minutes=5, seconds=5
    )
    assert next_run_after_failure(T0, 3600) == T0 + dt.timedelta(seconds=30)
    assert next_run_after_failure(T0, 5) == T0 + dt.timedelta(seconds=5)
    assert request_left_after(T0, T0 + dt.timedelta(seconds=1)) is None
    assert request_left_after(T0 + dt.timedelta(seconds=2), T0) == T0 + dt.timedelta(seconds=2)
    assert request_left_after(None, T0) is None
