"""Unit tests of the inventory domain: every row of the spec's stock table and its implicit rules.

`Books` plays the service layer in memory: it finds orders by document and by quote, keeps
products, customers, levels and the ledger, and checks after every step that the books hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from inventory.domain.adjustments import ManualAdjustment, Transfer
from inventory.domain.catalog import (
    Customer,
    Location,
    PennylaneCustomer,
    PennylaneProduct,
    Product,
    Supplier,
    import_pennylane_customer,
    import_pennylane_product,
    set_default_location,
)
from inventory.domain.documents import DocumentKind, DocumentLine, DocumentVersion
from inventory.domain.errors import DomainError
from inventory.domain.events import (
    Conflict,
    ConflictReason,
    CustomerChangedInStockpit,
    CustomerCreatedInStockpit,
    DomainEvent,
    NegativeStock,
    OrderCreated,
    ProductChangedInStockpit,
    ReceiptSendRequested,
    ReturnCreated,
    StockChanged,
    StockMeasure,
    UnknownReference,
)
from inventory.domain.orders import Order, OrderStatus
from inventory.domain.outcome import Outcome
from inventory.domain.pennylane_import import DocumentApplication, apply_pennylane_document
from inventory.domain.purchases import Purchase
from inventory.domain.returns import Return
from inventory.domain.settings import StockMode, TenantSettings
from inventory.domain.stock import (
    CauseKind,
    Effect,
    LedgerEntry,
    StockKey,
    StockLevel,
    post_movements,
    reconcile,
)

TENANT = "acme"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
D = Decimal


def t(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


LineSpec = tuple[int | None, str] | tuple[int | None, str, bool]


def doc(
    kind: DocumentKind,
    pennylane_id: int,
    *lines: LineSpec,
    at: int = 0,
    draft: bool = False,
    quote: int | None = None,
    customer: int | None = None,
    credited: int | None = None,
    tenant: str = TENANT,
    status: str | None = None,
) -> DocumentVersion:
    """Lines are (Pennylane product id or None, quantity[, is service])."""
    built = []
    for index, spec in enumerate(lines):
        product_id, quantity = spec[0], spec[1]
        is_service = len(spec) == 3 and bool(spec[2])
        product = (
            PennylaneProduct(product_id, f"Product {product_id}", f"SKU-{product_id}", is_service)
            if product_id is not None
            else None
        )
        built.append(DocumentLine(pennylane_id * 100 + index, D(quantity), product, "line"))
    return DocumentVersion(
        tenant_id=tenant,
        kind=kind,
        pennylane_id=pennylane_id,
        updated_at=t(at),
        draft=draft,
        lines=tuple(built),
        customer=PennylaneCustomer(customer, f"Customer {customer}") if customer else None,
        quote_id=quote,
        credited_invoice_id=credited,
        status=status,
    )


def invoice(pennylane_id: int, *lines: LineSpec, **kwargs: object) -> DocumentVersion:
    return doc(DocumentKind.INVOICE, pennylane_id, *lines, **kwargs)  # type: ignore[arg-type]


def purchase_order(pennylane_id: int, *lines: LineSpec, **kwargs: object) -> DocumentVersion:
    return doc(DocumentKind.PURCHASE_ORDER, pennylane_id, *lines, **kwargs)  # type: ignore[arg-type]


def credit_note(pennylane_id: int, *lines: LineSpec, **kwargs: object) -> DocumentVersion:
    return doc(DocumentKind.CREDIT_NOTE, pennylane_id, *lines, **kwargs)  # type: ignore[arg-type]


class Books:
    """An in-memory service layer over the pure domain."""

    def __init__(self, **settings: object) -> None:
        self.main = Location.create(TENANT, "Warehouse")
        self.van = Location.create(TENANT, "Van")
        self.settings = TenantSettings(TENANT, self.main.location_id, **settings)  # type: ignore[arg-type]
        self.levels: dict[StockKey, StockLevel] = {}
        self.entries: list[LedgerEntry] = []
        self.events: list[DomainEvent] = []
        self.products: dict[int, Product] = {}
        self.customers: dict[int, Customer] = {}
        self.orders: list[Order] = []
        self.returns: dict[int, Return] = {}
        self.subjects: dict[object, Order | Return | Purchase] = {}

    def post(self, outcome: Outcome, at: datetime = T0) -> None:
        posting = post_movements(TENANT, self.levels, outcome.movements, at)
        self.entries.extend(posting.entries)
        self.events.extend(outcome.events)
        self.events.extend(posting.events)
        self.check()

    def order_for(self, version: DocumentVersion) -> Order | None:
        for order in self.orders:
            if order.holds(version):
                return order
        if version.quote_id is not None:
            for order in self.orders:
                if order.quote_id == version.quote_id:
                    return order
        return None

    def apply(self, version: DocumentVersion, at: int = 0) -> DocumentApplication:
        named = {line.product.pennylane_id for line in version.lines if line.product}
        products = {pid: self.products[pid] for pid in named if pid in self.products}
        customer = self.customers.get(version.customer.pennylane_id) if version.customer else None
        if version.is_credit_note:
            credited = None
            known_return = self.returns.get(version.pennylane_id)
            if known_return is not None and known_return.order_id is not None:
                credited = next(o for o in self.orders if o.order_id == known_return.order_id)
            elif version.credited_invoice_id is not None:
                credited = next(
                    (
                        order
                        for order in self.orders
                        if f"invoice:{version.credited_invoice_id}" in order.sources
                    ),
                    None,
                )
            result = apply_pennylane_document(
                self.settings,
                version,
                t(at),
                products=products,
                customer=customer,
                return_=self.returns.get(version.pennylane_id),
                credited_order=credited,
            )
            assert result.return_ is not None
            self.returns[version.pennylane_id] = result.return_
            self.subjects[result.return_.return_id] = result.return_
        else:
            existing = self.order_for(version)
            result = apply_pennylane_document(
                self.settings, version, t(at), products=products, customer=customer, order=existing
            )
            assert result.order is not None
            if existing is None:
                self.orders.append(result.order)
            self.subjects[result.order.order_id] = result.order
        for product in result.new_products:
            assert product.pennylane_id is not None
            self.products[product.pennylane_id] = product
        if result.new_customer is not None:
            assert result.new_customer.pennylane_id is not None
            self.customers[result.new_customer.pennylane_id] = result.new_customer
        self.post(result.outcome)
        return result

    def product(self, pennylane_id: int) -> Product:
        return self.products[pennylane_id]

    def level(self, pennylane_id: int, location: Location | None = None) -> StockLevel:
        product_id = self.products[pennylane_id].product_id
        location_id = (location or self.main).location_id
        return self.levels.get(
            StockKey(product_id, location_id), StockLevel(TENANT, product_id, location_id)
        )

    def stock(self, pennylane_id: int, location: Location | None = None) -> tuple[D, D, D, D]:
        """(real, reserved, available, incoming)."""
        level = self.level(pennylane_id, location)
        return level.real, level.reserved, level.available, level.incoming

    def stock_product(self, product: Product, location: Location | None = None) -> StockLevel:
        location_id = (location or self.main).location_id
        return self.levels.get(
            StockKey(product.product_id, location_id),
            StockLevel(TENANT, product.product_id, location_id),
        )

    def check(self) -> None:
        """Rule 6: levels equal the ledger; each aggregate's effect equals its own entries."""
        assert reconcile(self.levels.values(), self.entries) == []
        for subject_id, subject in self.subjects.items():
            summed: dict[StockKey, Effect] = {}
            for entry in self.entries:
                if entry.subject_id == subject_id:
                    summed[entry.key] = summed.get(entry.key, Effect()) + entry.delta
            assert {k: v for k, v in summed.items() if not v.is_zero} == subject.applied

    def of_type(self, kind: type[DomainEvent]) -> list[DomainEvent]:
        return [event for event in self.events if isinstance(event, kind)]


def conflicts(events: Iterable[DomainEvent], reason: ConflictReason) -> list[Conflict]:
    return [e for e in events if isinstance(e, Conflict) and e.reason is reason]


# --- settings -------------------------------------------------------------------------------


def test_settings_defaults_follow_the_spec() -> None:
    settings = TenantSettings(TENANT, Location.create(TENANT, "Main").location_id)
    assert settings.import_products is True
    assert settings.import_services is False
    assert settings.delivery_notes_update_real_stock is False
    assert settings.restock_on_credit_note is False
    assert settings.sync_interval == timedelta(minutes=30)
    assert settings.stock_mode is StockMode.DEDUCT_ON_ORDER


def test_settings_reject_an_absurd_sync_interval() -> None:
    with pytest.raises(DomainError, match="sync interval"):
        TenantSettings(
            TENANT, Location.create(TENANT, "Main").location_id, sync_interval=timedelta(0)
        )


def test_default_location_must_be_an_active_location_of_the_tenant() -> None:
    books = Books()
    other_tenant = Location.create("other", "Theirs")
    with pytest.raises(DomainError):
        set_default_location(books.settings, other_tenant)
    with pytest.raises(DomainError, match="default location cannot be deactivated"):
        books.main.deactivate(books.settings)
    set_default_location(books.settings, books.van)
    assert books.settings.default_location_id == books.van.location_id
    books.main.deactivate(books.settings)
    assert not books.main.active


# --- stock table, mode off (default) -------------------------------------------------------


def test_invoice_with_mode_off_takes_units_out_of_real_stock() -> None:
    books = Books()
    result = books.apply(invoice(1, (10, "4")))
    assert books.stock(10) == (D(-4), D(0), D(-4), D(0))
    assert result.order is not None
    assert result.order.mode is StockMode.DEDUCT_ON_ORDER
    created = books.of_type(OrderCreated)
    assert len(created) == 1


def test_purchase_order_with_mode_off_takes_units_out_of_real_stock() -> None:
    books = Books()
    books.apply(purchase_order(5, (10, "3")))
    assert books.stock(10)[:3] == (D(-3), D(0), D(-3))


def test_delivery_note_with_mode_off_is_recorded_only() -> None:
    books = Books()
    books.apply(invoice(1, (10, "4")))
    order = books.orders[0]
    entries_before = len(books.entries)
    note, outcome = order.deliver({books.product(10).product_id: D(3)}, t(5))
    books.post(outcome)
    assert outcome.movements == []
    assert len(books.entries) == entries_before
    assert books.stock(10)[:3] == (D(-4), D(0), D(-4))
    assert order.delivered_quantities() == {books.product(10).product_id: D(3)}
    assert note.location_id == books.main.location_id


# --- stock table, mode on -------------------------------------------------------------------


def test_invoice_with_mode_on_reserves() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "4")))
    assert books.stock(10) == (D(0), D(4), D(-4), D(0))
    assert books.orders[0].mode is StockMode.RESERVE_UNTIL_DELIVERY


def test_partial_deliveries_with_mode_on_move_real_and_reserved_together() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "10")))
    product_id = books.product(10).product_id
    order = books.orders[0]
    _, outcome = order.deliver({product_id: D(3)}, t(1))
    books.post(outcome)
    assert books.stock(10)[:3] == (D(-3), D(7), D(-10))
    _, outcome = order.deliver({product_id: D("6.5")}, t(2))
    books.post(outcome)
    assert books.stock(10)[:3] == (D("-9.5"), D("0.5"), D(-10))
    assert {entry.cause_kind for entry in books.entries} == {
        CauseKind.DOCUMENT,
        CauseKind.DELIVERY_NOTE,
    }


def test_delivering_more_than_remains_is_refused_without_changing_the_order() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "2")))
    order = books.orders[0]
    with pytest.raises(DomainError, match="remain"):
        order.deliver({books.product(10).product_id: D(3)}, t(1))
    with pytest.raises(DomainError, match="not on this order"):
        order.deliver({Product.create_in_stockpit(TENANT, "x", None)[0].product_id: D(1)}, t(1))
    assert order.deliveries == []


def test_delivery_from_another_location_takes_real_stock_there() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "5")))
    _, outcome = books.orders[0].deliver(
        {books.product(10).product_id: D(2)}, t(1), location=books.van
    )
    books.post(outcome)
    assert books.stock(10, books.van)[:2] == (D(-2), D(0))
    assert books.stock(10)[:2] == (D(0), D(3))


# --- rule 1: the order keeps its mode -----------------------------------------------------


def test_setting_switched_on_after_the_order_does_not_move_stock_again_on_delivery() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5")))
    books.settings.delivery_notes_update_real_stock = True
    _, outcome = books.orders[0].deliver({books.product(10).product_id: D(5)}, t(1))
    books.post(outcome)
    assert books.stock(10)[:3] == (D(-5), D(0), D(-5))


def test_setting_switched_off_after_the_order_still_lets_delivery_move_real_stock() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "5")))
    books.settings.delivery_notes_update_real_stock = False
    _, outcome = books.orders[0].deliver({books.product(10).product_id: D(2)}, t(1))
    books.post(outcome)
    assert books.stock(10)[:3] == (D(-2), D(3), D(-5))
    # A later version of the same document still follows the order's own mode.
    books.apply(invoice(1, (10, "6"), at=5))
    assert books.stock(10)[:3] == (D(-2), D(4), D(-6))


def test_default_location_changed_later_leaves_existing_orders_where_they_were() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5")))
    set_default_location(books.settings, books.van)
    books.apply(purchase_order(1, (10, "7"), at=5))
    assert books.stock(10)[0] == D(-7)
    assert books.stock(10, books.van)[0] == D(0)


# --- credit notes and returns -------------------------------------------------------------


def test_credit_note_without_restock_creates_a_return_and_leaves_stock() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5")))
    result = books.apply(credit_note(2, (10, "-2"), credited=1))
    assert books.stock(10)[0] == D(-5)
    assert result.return_ is not None
    assert result.return_.restock is False
    assert result.return_.order_id == books.orders[0].order_id
    assert len(books.of_type(ReturnCreated)) == 1


@pytest.mark.parametrize("mode_on", [False, True])
def test_credit_note_with_restock_puts_units_back_in_either_mode(mode_on: bool) -> None:
    """Rule 10: under the default mode the invoiced units left, so the credited ones come back;
    under "delivery notes update real stock" nothing left yet: the reservation is released."""
    books = Books(restock_on_credit_note=True, delivery_notes_update_real_stock=mode_on)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-2"), credited=1))
    if mode_on:
        assert books.stock(10)[:3] == (D(0), D(3), D(-3))
    else:
        assert books.stock(10)[:3] == (D(-3), D(0), D(-3))


# --- rule 10: a credit note settles its invoice's order first ------------------------------


@pytest.mark.parametrize("restock", [False, True])
def test_full_credit_of_an_undelivered_order_releases_its_reservation(restock: bool) -> None:
    books = Books(restock_on_credit_note=restock, delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "5")))
    assert books.stock(10)[:2] == (D(0), D(5))
    books.apply(credit_note(2, (10, "-5"), credited=1))
    assert books.stock(10)[:3] == (D(0), D(0), D(0)), "nothing restocked, nothing reserved"
    assert books.orders[0].remaining_quantities() == {books.product(10).product_id: D(0)}


@pytest.mark.parametrize(("restock", "real"), [(False, D(-3)), (True, D(-1))])
def test_credit_beyond_the_undelivered_part_is_returned_goods(restock: bool, real: D) -> None:
    """Invoice 5, 3 delivered, credit 4: 2 release the reservation, 2 are returned goods."""
    books = Books(restock_on_credit_note=restock, delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "5")))
    order = books.orders[0]
    books.post(order.deliver({books.product(10).product_id: D(3)}, t(1))[1])
    books.apply(credit_note(2, (10, "-4"), credited=1, at=2))
    assert books.stock(10)[:2] == (real, D(0))


def test_units_released_by_a_credit_can_no_longer_be_delivered() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-2"), credited=1))
    order, product_id = books.orders[0], books.product(10).product_id
    with pytest.raises(DomainError, match="3 remain"):
        order.deliver({product_id: D(4)}, t(1))
    books.post(order.deliver({product_id: D(3)}, t(1))[1])
    assert books.stock(10)[:2] == (D(-3), D(0))


def test_a_restock_decided_in_stockpit_goes_through_the_order() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-2"), credited=1))
    return_, order = books.returns[2], books.orders[0]
    assert return_.settled_by_order
    with pytest.raises(DomainError, match="pass the order"):
        return_.restock_now(t(1))
    assert return_.restock is False, "a refused command changes nothing"
    with pytest.raises(DomainError, match="order of its invoice"):
        return_.restock_now(t(1), order=Order.for_document(invoice(9, (10, "1")), t(1)))
    assert return_.restock is False
    books.post(return_.restock_now(t(1), order=order))
    assert books.stock(10)[0] == D(-3)
    books.post(return_.edit(t(2), quantities={books.product(10).product_id: D(9)}, order=order))
    assert books.stock(10)[0] == D(0), "never more than the order took out (rule 11)"


def test_deleting_a_credit_note_takes_its_restock_back() -> None:
    books = Books(restock_on_credit_note=True)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-2"), credited=1, draft=True))
    assert books.stock(10)[0] == D(-5), "a draft credit note moves nothing"
    books.apply(credit_note(2, (10, "-2"), credited=1, at=1))
    assert books.stock(10)[0] == D(-3)
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.CREDIT_NOTE, 2, t(2)))
    assert books.stock(10)[0] == D(-5)


# --- rule 11: a return never puts back more than its order has out --------------------------


@pytest.mark.parametrize("mode_on", [False, True])
def test_credit_note_after_a_cancel_in_stockpit_moves_nothing(mode_on: bool) -> None:
    books = Books(restock_on_credit_note=True, delivery_notes_update_real_stock=mode_on)
    books.apply(invoice(1, (10, "5")))
    books.post(books.orders[0].cancel(t(1)))
    assert books.stock(10)[:2] == (D(0), D(0))
    result = books.apply(credit_note(2, (10, "-5"), credited=1, at=2))
    assert result.return_ is not None
    assert result.return_.status.value == "open"
    assert books.stock(10)[:2] == (D(0), D(0))
    [reported] = conflicts(books.events, ConflictReason.CREDIT_EXCEEDS_ORDER)
    assert "(cancelled) had 0 left to settle; 5 move no stock" in reported.detail


def test_cancelling_a_credited_order_reverses_only_what_is_still_out() -> None:
    books = Books(restock_on_credit_note=True)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-2"), credited=1))
    assert books.stock(10)[0] == D(-3)
    books.post(books.orders[0].cancel(t(1)))
    assert books.stock(10)[0] == D(0)


def test_two_credit_notes_restock_at_most_what_the_invoice_took_out() -> None:
    books = Books(restock_on_credit_note=True)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-3"), credited=1))
    assert not conflicts(books.events, ConflictReason.CREDIT_EXCEEDS_ORDER)
    books.apply(credit_note(3, (10, "-4"), credited=1, at=1))
    assert books.stock(10)[0] == D(0)
    [reported] = conflicts(books.events, ConflictReason.CREDIT_EXCEEDS_ORDER)
    assert "had 2 left to settle; 2 move no stock" in reported.detail
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.CREDIT_NOTE, 2, t(2)))
    assert books.stock(10)[0] == D(-1), "the second one now returns its whole 4"


def test_a_return_before_its_order_was_known_hands_its_restock_to_the_order() -> None:
    """A credit note first read without its invoice's order restocks alone; once a later
    version finds the order, the order settles it (and caps it)."""
    books = Books(restock_on_credit_note=True)
    books.apply(credit_note(2, (10, "-9"), credited=1))
    assert books.stock(10)[0] == D(9)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-9"), credited=1, at=1, customer=4))
    assert books.stock(10)[0] == D(0)


# --- rule 12: goods or service is decided once, when a document is first applied ------------


def test_a_product_moved_to_services_keeps_the_stock_of_past_documents() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5")))
    assert books.stock(10)[0] == D(-5)
    product = books.product(10)
    import_pennylane_product(
        books.settings, product, PennylaneProduct(10, "Product 10", "SKU-10", True), t(1)
    )
    assert product.is_service
    # An annotation edit on the finalized invoice, read after the move: its line now says 706.
    books.apply(invoice(1, (10, "5", True), at=2))
    assert books.stock(10)[0] == D(-5)
    books.apply(invoice(3, (10, "2", True), at=3))  # a new invoice follows the new account
    assert books.stock(10)[0] == D(-5)
    _, outcome = ManualAdjustment.by_delta(TENANT, product, books.main, D(5), "leftover", t(4))
    books.post(outcome)
    assert books.stock(10)[0] == D(0), "the leftover stock of a service can be cleared"


def test_a_service_moved_to_goods_does_not_replay_past_documents() -> None:
    books = Books(import_services=True)
    books.apply(invoice(1, (10, "5", True)))
    assert books.stock(10)[0] == D(0)
    books.apply(invoice(1, (10, "5"), at=1))
    assert books.stock(10)[0] == D(0)
    books.apply(invoice(1, (10, "6"), (11, "1"), at=2))  # a product new to the document
    assert books.stock(10)[0] == D(0)
    assert books.stock(11)[0] == D(-1)
    books.apply(invoice(3, (10, "2"), at=3))
    assert books.stock(10)[0] == D(-2)


def test_moving_a_product_between_accounts_does_not_change_a_version_fingerprint() -> None:
    assert invoice(1, (10, "5")).fingerprint == invoice(1, (10, "5", True)).fingerprint


# --- Pennylane's invoice "cancelled" and purchase order "archived" (issue 14, item 10) ----


def test_a_cancelled_invoice_is_settled_by_its_credit_note_alone() -> None:
    """Pennylane cancels a finalized invoice by a credit note: the credit note settles the
    order (rule 10); the invoice's later "cancelled" status moves nothing more."""
    books = Books(restock_on_credit_note=True)
    books.apply(invoice(1, (10, "5")))
    books.apply(credit_note(2, (10, "-5"), credited=1, at=1))
    books.apply(invoice(1, (10, "5"), at=2, status="cancelled"))
    assert books.stock(10)[0] == D(0)
    assert books.orders[0].sources["invoice:1"].status == "cancelled"
    assert books.orders[0].status is OrderStatus.OPEN


def test_a_purchase_order_archived_in_pennylane_keeps_its_reservation() -> None:
    """Archiving in Pennylane files a document away; the sale stands until it is delivered,
    credited, or archived or cancelled in Stockpit."""
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(purchase_order(1, (10, "5")))
    books.apply(purchase_order(1, (10, "5"), at=1, status="archived"))
    assert books.stock(10)[:2] == (D(0), D(5))
    assert books.orders[0].status is OrderStatus.OPEN


def test_return_restock_action_and_edits_move_by_difference() -> None:
    books = Books()
    books.apply(credit_note(2, (10, "3"), (11, "1")))
    return_ = books.returns[2]
    books.post(return_.restock_now(t(1)))
    assert books.stock(10)[0] == D(3)
    assert books.stock(11)[0] == D(1)
    books.post(return_.restock_now(t(2)))  # already restocking: nothing more
    assert books.stock(10)[0] == D(3)
    books.post(
        return_.edit(
            t(3),
            quantities={books.product(10).product_id: D(1), books.product(11).product_id: D(0)},
        )
    )
    assert books.stock(10)[0] == D(1)
    assert books.stock(11)[0] == D(0)
    books.post(return_.edit(t(4), restock=False))
    assert books.stock(10)[0] == D(0)
    assert {e.cause_kind for e in books.entries} == {CauseKind.RETURN_EDIT}


def test_return_edited_in_stockpit_keeps_its_quantities_against_a_later_version() -> None:
    books = Books(restock_on_credit_note=True)
    books.apply(credit_note(2, (10, "3"), draft=True))
    assert books.returns[2].status.value == "draft"
    assert books.stock(10)[0] == D(0)
    books.apply(credit_note(2, (10, "3"), at=1))
    return_ = books.returns[2]
    books.post(return_.edit(t(2), quantities={books.product(10).product_id: D(2)}))
    books.apply(credit_note(2, (10, "5"), at=3))
    assert books.stock(10)[0] == D(2)
    assert conflicts(books.events, ConflictReason.RETURN_EDITED_IN_STOCKPIT)


def test_credit_note_of_an_unknown_invoice_is_reported() -> None:
    books = Books()
    books.apply(credit_note(2, (10, "1"), credited=999))
    unknown = books.of_type(UnknownReference)
    assert len(unknown) == 1
    assert isinstance(unknown[0], UnknownReference)
    assert unknown[0].pennylane_id == 999


def test_finalized_invoice_corrected_by_a_credit_note_rule_9() -> None:
    books = Books(restock_on_credit_note=True)
    books.apply(invoice(1, (10, "10")))
    books.apply(credit_note(2, (10, "-3"), credited=1, at=5))
    assert books.stock(10)[0] == D(-7)


def test_editing_a_draft_return_is_refused() -> None:
    books = Books()
    books.apply(credit_note(2, (10, "3"), draft=True))
    with pytest.raises(DomainError, match="open return"):
        books.returns[2].restock_now(t(1))


# --- purchases and receipts ---------------------------------------------------------------


def stockpit_product(books: Books, name: str) -> Product:
    product, _ = Product.create_in_stockpit(TENANT, name, None)
    return product


def test_purchase_receipts_partial_and_at_another_location() -> None:
    books = Books()
    supplier = Supplier.create(TENANT, "Bolts Ltd")
    bolt = stockpit_product(books, "bolt")
    purchase, outcome = Purchase.place(
        supplier, books.main, [(bolt, D(10), D("0.5"), "FR_200")], t(0)
    )
    books.subjects[purchase.purchase_id] = purchase
    books.post(outcome)
    assert books.stock_product(bolt).incoming == D(10)
    _, outcome = purchase.receive({bolt.product_id: D(4)}, date(2026, 3, 2), t(1))
    books.post(outcome)
    assert (books.stock_product(bolt).real, books.stock_product(bolt).incoming) == (D(4), D(6))
    _, outcome = purchase.receive(
        {bolt.product_id: D(3)}, date(2026, 3, 3), t(2), location=books.van
    )
    books.post(outcome)
    assert books.stock_product(bolt, books.van).real == D(3)
    assert books.stock_product(bolt).incoming == D(3)
    # Over-receipt: all of it is real stock; incoming stops at zero.
    _, outcome = purchase.receive({bolt.product_id: D(5)}, date(2026, 3, 4), t(3))
    books.post(outcome)
    assert (books.stock_product(bolt).real, books.stock_product(bolt).incoming) == (D(9), D(0))


def test_closing_a_purchase_releases_what_is_still_incoming() -> None:
    books = Books()
    supplier = Supplier.create(TENANT, "Bolts Ltd")
    bolt = stockpit_product(books, "bolt")
    purchase, outcome = Purchase.place(supplier, books.main, [(bolt, D(10), D(1), "FR_200")], t(0))
    books.subjects[purchase.purchase_id] = purchase
    books.post(outcome)
    _, outcome = purchase.receive({bolt.product_id: D(4)}, date(2026, 3, 2), t(1))
    books.post(outcome)
    books.post(purchase.close(t(2)))
    assert (books.stock_product(bolt).real, books.stock_product(bolt).incoming) == (D(4), D(0))
    with pytest.raises(DomainError):
        purchase.receive({bolt.product_id: D(1)}, date(2026, 3, 5), t(3))


def test_receipt_is_sent_to_pennylane_once_and_again_only_after_a_failure() -> None:
    books = Books()
    supplier = Supplier.create(TENANT, "Bolts Ltd")
    bolt = stockpit_product(books, "bolt")
    purchase, _ = Purchase.place(supplier, books.main, [(bolt, D(10), D("0.5"), "FR_200")], t(0))
    receipt, _ = purchase.receive({bolt.product_id: D(4)}, date(2026, 3, 2), t(1))
    events = purchase.request_send(receipt.receipt_id, supplier)
    assert len(events) == 1
    sent = events[0]
    assert isinstance(sent, ReceiptSendRequested)
    assert sent.supplier_name == "Bolts Ltd"
    assert [(line.quantity, line.unit_price_before_tax) for line in sent.lines] == [
        (D(4), D("0.5"))
    ]
    assert purchase.request_send(receipt.receipt_id, supplier) == []
    purchase.mark_send_failed(receipt.receipt_id, "timeout")
    assert len(purchase.request_send(receipt.receipt_id, supplier)) == 1
    purchase.mark_sent(receipt.receipt_id, 777)
    purchase.mark_send_failed(receipt.receipt_id, "late report of an older attempt")
    assert receipt.pennylane_invoice_id == 777
    with pytest.raises(DomainError, match="already in Pennylane"):
        purchase.request_send(receipt.receipt_id, supplier)


# --- archive and cancel -------------------------------------------------------------------


def test_archive_releases_the_remaining_reservation_only() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "10")))
    order = books.orders[0]
    _, outcome = order.deliver({books.product(10).product_id: D(4)}, t(1))
    books.post(outcome)
    books.post(order.archive(t(2)))
    assert books.stock(10)[:3] == (D(-4), D(0), D(-4))
    assert books.entries[-1].cause_kind is CauseKind.ARCHIVE
    with pytest.raises(DomainError):
        order.deliver({books.product(10).product_id: D(1)}, t(3))


def test_archive_with_mode_off_changes_no_stock() -> None:
    books = Books()
    books.apply(invoice(1, (10, "10")))
    outcome = books.orders[0].archive(t(2))
    assert outcome.movements == []


@pytest.mark.parametrize("mode_on", [False, True])
def test_cancel_reverses_every_stock_effect_the_order_still_has(mode_on: bool) -> None:
    books = Books(delivery_notes_update_real_stock=mode_on)
    books.apply(invoice(1, (10, "10"), (11, "2")))
    order = books.orders[0]
    _, outcome = order.deliver({books.product(10).product_id: D(4)}, t(1))
    books.post(outcome)
    books.post(order.archive(t(2)))
    books.post(order.cancel(t(3)))
    assert books.stock(10)[:2] == (D(0), D(0))
    assert books.stock(11)[:2] == (D(0), D(0))
    assert order.applied == {}
    with pytest.raises(DomainError, match="already cancelled"):
        order.cancel(t(4))


def test_document_changed_after_cancel_moves_nothing_and_is_reported() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5")))
    books.post(books.orders[0].cancel(t(1)))
    books.apply(purchase_order(1, (10, "8"), at=2))
    assert books.stock(10)[0] == D(0)
    assert conflicts(books.events, ConflictReason.ORDER_CLOSED_IN_STOCKPIT)


# --- rule 2: drafts -------------------------------------------------------------------------


def test_draft_moves_nothing_and_counts_once_finalized_under_the_mode_then_in_force() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5"), draft=True))
    assert books.stock(10)[0] == D(0)
    assert books.orders[0].status is OrderStatus.DRAFT
    assert books.of_type(OrderCreated) == []
    books.settings.delivery_notes_update_real_stock = True
    books.apply(invoice(1, (10, "6"), at=1))
    assert books.stock(10)[:2] == (D(0), D(6))
    assert books.orders[0].mode is StockMode.RESERVE_UNTIL_DELIVERY
    assert len(books.of_type(OrderCreated)) == 1


def test_deleted_draft_leaves_nothing() -> None:
    books = Books()
    books.apply(invoice(1, (10, "5"), draft=True))
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.INVOICE, 1, t(1)))
    assert books.orders[0].status is OrderStatus.WITHDRAWN
    assert books.entries == []


# --- rule 3: edits and deletions ------------------------------------------------------------


@pytest.mark.parametrize("mode_on", [False, True])
def test_edited_purchase_order_moves_by_the_difference(mode_on: bool) -> None:
    books = Books(delivery_notes_update_real_stock=mode_on)
    books.apply(purchase_order(1, (10, "5"), (11, "2")))
    books.apply(purchase_order(1, (10, "7"), (12, "1"), at=1))
    available = [books.stock(pid)[2] for pid in (10, 11, 12)]
    assert available == [D(-7), D(0), D(-1)]
    last = [e for e in books.entries if e.product_id == books.product(10).product_id][-1]
    assert last.cause_kind is CauseKind.DOCUMENT
    assert last.reference == "purchase_order:1"
    assert last.version == t(1).isoformat()
    assert last.lines == "100"
    assert (last.real_delta, last.reserved_delta) == ((D(0), D(2)) if mode_on else (D(-2), D(0)))


def test_deleted_purchase_order_is_reversed_as_a_reversal() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(purchase_order(1, (10, "5")))
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.PURCHASE_ORDER, 1, t(1)))
    assert books.stock(10)[:2] == (D(0), D(0))
    assert books.entries[-1].cause_kind is CauseKind.REVERSAL
    assert books.entries[-1].lines == "100"
    assert books.orders[0].status is OrderStatus.WITHDRAWN


@pytest.mark.parametrize("mode_on", [False, True])
def test_reducing_an_order_below_delivered_keeps_delivered_units_out_and_reports(
    mode_on: bool,
) -> None:
    books = Books(delivery_notes_update_real_stock=mode_on)
    books.apply(purchase_order(1, (10, "10")))
    _, outcome = books.orders[0].deliver({books.product(10).product_id: D(8)}, t(1))
    books.post(outcome)
    books.apply(purchase_order(1, (10, "5"), at=2))
    assert books.stock(10)[:2] == (D(-8), D(0))
    found = conflicts(books.events, ConflictReason.DELIVERED_EXCEEDS_ORDER)
    assert len(found) == 1
    assert found[0].product_id == books.product(10).product_id
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.PURCHASE_ORDER, 1, t(3)))
    assert books.stock(10)[:2] == (D(-8), D(0))
    assert len(conflicts(books.events, ConflictReason.DELIVERED_EXCEEDS_ORDER)) == 2


def test_negative_quantity_on_a_sale_counts_as_zero_and_is_reported() -> None:
    books = Books()
    books.apply(invoice(1, (10, "-2")))
    assert books.stock(10)[0] == D(0)
    assert conflicts(books.events, ConflictReason.NEGATIVE_DOCUMENT_QUANTITY)


# --- rule 4: services and product-less lines ------------------------------------------------


def test_service_and_free_text_lines_move_nothing() -> None:
    books = Books(import_services=True)
    books.apply(invoice(1, (10, "2"), (20, "5", True), (None, "3")))
    assert books.stock(10)[0] == D(-2)
    assert books.stock(20) == (D(0), D(0), D(0), D(0))
    assert books.product(20).is_service
    assert [e.product_id for e in books.entries] == [books.product(10).product_id]


def test_unknown_service_on_a_document_is_not_created_when_services_are_not_imported() -> None:
    books = Books(import_products=False)
    books.apply(invoice(1, (10, "2"), (20, "5", True)))
    assert 10 in books.products  # a product named on a document is always created
    assert 20 not in books.products


# --- rule 5: negative stock -----------------------------------------------------------------


def test_negative_real_stock_is_allowed_and_reported() -> None:
    books = Books()
    books.apply(invoice(1, (10, "3")))
    negatives = books.of_type(NegativeStock)
    assert len(negatives) == 1
    assert isinstance(negatives[0], NegativeStock)
    assert negatives[0].measure is StockMeasure.REAL
    assert negatives[0].quantity == D(-3)


def test_negative_available_stock_is_reported_in_mode_on() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    books.apply(invoice(1, (10, "3")))
    negatives = books.of_type(NegativeStock)
    assert [(n.measure, n.quantity) for n in negatives if isinstance(n, NegativeStock)] == [
        (StockMeasure.AVAILABLE, D(-3))
    ]


def test_stock_going_up_reports_no_negative_stock() -> None:
    books = Books()
    books.apply(invoice(1, (10, "3")))
    books.events.clear()
    books.apply(purchase_order(2, (10, "1")))
    books.events.clear()
    _, outcome = ManualAdjustment.by_delta(
        TENANT, books.product(10), books.main, D(1), "found one", t(1)
    )
    books.post(outcome)
    assert books.of_type(NegativeStock) == []
    assert len(books.of_type(StockChanged)) == 1


# --- rule 6: ledger and reconciliation ------------------------------------------------------


def test_reconciliation_finds_a_level_that_drifted_from_the_ledger() -> None:
    books = Books()
    books.apply(invoice(1, (10, "3")))
    level = books.levels[books.level(10).key]
    level.real += D(1)
    mismatches = reconcile(books.levels.values(), books.entries)
    assert len(mismatches) == 1
    assert mismatches[0].level.real == D(-2)
    assert mismatches[0].ledger.real == D(-3)
    assert reconcile([], books.entries)[0].level == Effect()


def test_stock_changed_reports_levels_and_cause() -> None:
    books = Books()
    books.apply(invoice(1, (10, "3")))
    changed = books.of_type(StockChanged)
    assert len(changed) == 1
    event = changed[0]
    assert isinstance(event, StockChanged)
    assert (event.real, event.available, event.real_delta) == (D(-3), D(-3), D(-3))
    assert event.cause.startswith("document invoice:1")
    assert event.ledger_entry_id == books.entries[0].entry_id


# --- rule 7: versions in any order, any number of times ------------------------------------


def test_duplicates_and_older_versions_change_nothing() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5"), at=2))
    entries = len(books.entries)
    assert books.apply(purchase_order(1, (10, "5"), at=2)).applied is False
    assert books.apply(purchase_order(1, (10, "9"), at=1)).applied is False
    assert len(books.entries) == entries
    assert books.stock(10)[0] == D(-5)


def test_a_deletion_is_final_even_if_an_older_version_arrives_after_it() -> None:
    books = Books()
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.PURCHASE_ORDER, 1, t(5)))
    books.apply(purchase_order(1, (10, "5"), at=1))
    assert books.entries == []
    assert books.orders[0].status is OrderStatus.WITHDRAWN


def test_two_contents_with_the_same_version_marker_converge_whatever_the_order() -> None:
    first, second = purchase_order(1, (10, "5"), at=1), purchase_order(1, (10, "6"), at=1)
    one, two = Books(), Books()
    one.apply(first)
    one.apply(second)
    two.apply(second)
    two.apply(first)
    assert one.stock(10) == two.stock(10)


# --- rule 8: invoice and purchase order from one quote --------------------------------------


@pytest.mark.parametrize("invoice_first", [False, True])
@pytest.mark.parametrize("mode_on", [False, True])
def test_invoice_and_purchase_order_from_one_quote_are_one_sale(
    invoice_first: bool, mode_on: bool
) -> None:
    books = Books(delivery_notes_update_real_stock=mode_on)
    documents = [purchase_order(1, (10, "5"), quote=7), invoice(2, (10, "5"), quote=7, at=1)]
    for version in reversed(documents) if invoice_first else documents:
        books.apply(version)
    assert len(books.orders) == 1
    assert books.stock(10)[2] == D(-5)
    assert len(books.of_type(OrderCreated)) == 1


def test_partial_invoice_of_a_quote_does_not_release_the_rest() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "10"), quote=7))
    books.apply(invoice(2, (10, "4"), quote=7, at=1))
    assert books.stock(10)[0] == D(-10)
    books.apply(invoice(3, (10, "6"), quote=7, at=2))
    assert books.stock(10)[0] == D(-10)
    books.apply(invoice(4, (10, "1"), (11, "1"), quote=7, at=3))  # billed more than ordered
    assert books.stock(10)[0] == D(-11)
    assert books.stock(11)[0] == D(-1)


def test_quote_documents_edited_or_deleted_follow_the_maximum() -> None:
    books = Books()
    books.apply(invoice(2, (10, "5"), quote=7, draft=True))
    assert books.stock(10)[0] == D(0)  # a draft invoice of the quote counts nothing
    books.apply(purchase_order(1, (10, "6"), quote=7, at=1))
    assert books.stock(10)[0] == D(-6)
    books.apply(invoice(2, (10, "5"), quote=7, at=2))  # finalized below the order: order wins
    assert books.stock(10)[0] == D(-6)
    books.apply(purchase_order(1, (10, "4"), quote=7, at=3))  # order edited down: invoice wins
    assert books.stock(10)[0] == D(-5)
    books.apply(DocumentVersion.deletion(TENANT, DocumentKind.PURCHASE_ORDER, 1, t(4)))
    assert books.stock(10)[0] == D(-5)
    assert books.orders[0].status is OrderStatus.OPEN


def test_documents_of_different_quotes_are_different_orders() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5"), quote=7))
    books.apply(invoice(2, (10, "5"), quote=8))
    books.apply(invoice(3, (10, "1")))
    assert len(books.orders) == 3
    assert books.stock(10)[0] == D(-11)


def test_a_document_cannot_attach_to_an_order_of_another_quote() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5"), quote=7))
    with pytest.raises(DomainError, match="quote"):
        apply_pennylane_document(
            books.settings, invoice(2, (10, "1"), quote=8), t(1), products={}, order=books.orders[0]
        )


# --- products -------------------------------------------------------------------------------


def test_product_named_on_a_document_is_created_even_when_imports_are_off() -> None:
    books = Books(import_products=False)
    books.apply(invoice(1, (10, "1")))
    assert books.product(10).name == "Product 10"
    assert books.product(10).sku == "SKU-10"


@pytest.mark.parametrize(
    ("import_products", "import_services", "is_service", "imported"),
    [
        (True, False, False, True),
        (False, False, False, False),
        (True, False, True, False),
        (True, True, True, True),
        (False, True, True, True),
    ],
)
def test_pennylane_product_import_follows_the_settings(
    import_products: bool, import_services: bool, is_service: bool, imported: bool
) -> None:
    books = Books(import_products=import_products, import_services=import_services)
    product, events = import_pennylane_product(
        books.settings, None, PennylaneProduct(10, "Bolt", "B-1", is_service), t(0)
    )
    assert (product is not None) is imported
    assert len(events) == int(imported)


def test_name_and_sku_follow_the_last_change_on_either_side_without_echo() -> None:
    books = Books()
    product, _ = import_pennylane_product(
        books.settings, None, PennylaneProduct(10, "Bolt", "B-1", False), t(0)
    )
    assert product is not None
    events = product.change_in_stockpit(name="Bolt M6", at=t(10))
    # The request carries what Stockpit last saw in Pennylane, for outbound's last-change-wins.
    assert events == [
        ProductChangedInStockpit(
            TENANT,
            product.product_id,
            10,
            "Bolt M6",
            "B-1",
            t(10),
            pennylane_name="Bolt",
            pennylane_sku="B-1",
            pennylane_updated_at=t(0),
        )
    ]
    # A Pennylane price change (name unchanged there) later does not undo the rename.
    assert not product.apply_pennylane_update(PennylaneProduct(10, "Bolt", "B-1", False), t(11))
    assert product.name == "Bolt M6"
    # Pennylane's own rename made before the Stockpit one loses; made after, wins.
    product.apply_pennylane_update(PennylaneProduct(10, "Bolt (old)", "B-1", False), t(9))
    assert product.name == "Bolt M6"
    assert product.apply_pennylane_update(PennylaneProduct(10, "Bolt M6 zinc", "B-2", False), t(20))
    assert (product.name, product.sku) == ("Bolt M6 zinc", "B-2")
    # The echo of our own write comes back as a Pennylane change and emits nothing.
    product.change_in_stockpit(sku="B-3", at=t(30))
    assert (
        product.apply_pennylane_update(PennylaneProduct(10, "Bolt M6 zinc", "B-3", False), t(31))
        is False
    )
    assert product.sku == "B-3"


@pytest.mark.parametrize("stockpit_first", [True, False])
def test_renames_on_both_sides_while_disconnected_end_on_the_later_one(
    stockpit_first: bool,
) -> None:
    """Rule 13 on the inventory side: Stockpit renames A, Pennylane renames B; after
    reconnection Pennylane's B arrives (and, when Stockpit's A was later, outbound's write of A
    comes back as an echo). Both orders end on the later rename, and nothing is echoed."""
    books = Books()
    product, _ = import_pennylane_product(
        books.settings, None, PennylaneProduct(10, "Bolt", "B-1", False), t(0)
    )
    assert product is not None
    stockpit_at, pennylane_at = (t(10), t(20)) if stockpit_first else (t(20), t(10))
    assert product.change_in_stockpit(name="A", at=stockpit_at)
    import_pennylane_product(
        books.settings, product, PennylaneProduct(10, "B", "B-1", False), pennylane_at
    )
    if stockpit_first:
        assert product.name == "B"
    else:
        assert product.name == "A"
        # Outbound wrote A after the reconnection: its echo changes nothing and emits nothing.
        _, echoed = import_pennylane_product(
            books.settings, product, PennylaneProduct(10, "A", "B-1", False), t(30)
        )
        assert echoed == []
        assert product.name == "A"


def test_older_or_repeated_pennylane_product_events_are_ignored() -> None:
    books = Books()
    product, _ = import_pennylane_product(
        books.settings, None, PennylaneProduct(10, "A", None, False), t(5)
    )
    assert product is not None
    import_pennylane_product(books.settings, product, PennylaneProduct(10, "B", None, False), t(3))
    assert product.name == "A"
    import_pennylane_product(books.settings, product, PennylaneProduct(10, "C", None, False), t(6))
    import_pennylane_product(books.settings, product, PennylaneProduct(10, "C", None, False), t(6))
    assert product.name == "C"


def test_product_whose_pennylane_id_changed_becomes_a_new_product() -> None:
    books = Books()
    books.apply(purchase_order(1, (10, "5")))
    changed = DocumentVersion(
        TENANT,
        DocumentKind.PURCHASE_ORDER,
        1,
        t(1),
        lines=(DocumentLine(100, D(5), PennylaneProduct(99, "Product 10", "SKU-10", False)),),
    )
    books.apply(changed)
    assert books.product(99).product_id != books.product(10).product_id
    assert books.stock(10)[0] == D(0)
    assert books.stock(99)[0] == D(-5)


def test_deleted_or_unlinked_products_send_nothing_to_pennylane() -> None:
    product, _ = Product.create_in_stockpit(TENANT, "Local", "L-1")
    assert product.change_in_stockpit(name="Local 2", at=t(1)) == []
    product.deactivate()
    product.delete()
    with pytest.raises(DomainError, match="deleted"):
        product.change_in_stockpit(name="x", at=t(2))


# --- customers ------------------------------------------------------------------------------


def test_customer_named_on_a_document_is_created() -> None:
    books = Books()
    result = books.apply(invoice(1, (10, "1"), customer=55))
    assert result.new_customer is not None
    assert books.orders[0].customer_id == result.new_customer.customer_id
    books.apply(invoice(2, (10, "1"), customer=55))
    assert len(books.customers) == 1


def test_stockpit_order_creates_its_customer_in_pennylane_once() -> None:
    books = Books()
    bolt = stockpit_product(books, "bolt")
    customer = Customer.create_in_stockpit(TENANT, "Dupont", ("a@example.com",))
    assert customer.change_in_stockpit(name="Dupont SA", at=t(0)) == []
    order, outcome = Order.create_in_stockpit(
        books.settings, [(bolt, D(2))], t(1), customer=customer
    )
    books.subjects[order.order_id] = order
    books.post(outcome)
    assert books.stock_product(bolt).real == D(-2)
    assert [type(e) for e in outcome.events] == [OrderCreated, CustomerCreatedInStockpit]
    _, again = Order.create_in_stockpit(books.settings, [(bolt, D(1))], t(2), customer=customer)
    assert not any(isinstance(e, CustomerCreatedInStockpit) for e in again.events)
    changed = customer.change_in_stockpit(emails=("b@example.com",), at=t(3))
    assert isinstance(changed[0], CustomerChangedInStockpit)
    assert changed[0].pennylane_id is None
    customer.link_pennylane_id(4242)
    assert customer.change_in_stockpit(address=None, at=t(4)) == []


def test_customer_changes_follow_the_last_change_and_never_echo() -> None:
    customer, _ = import_pennylane_customer(
        TENANT, None, PennylaneCustomer(55, "Dupont", ("a@x.fr",)), t(0)
    )
    events = customer.change_in_stockpit(name="Dupont SA", at=t(5))
    assert isinstance(events[0], CustomerChangedInStockpit)
    assert events[0].pennylane_id == 55
    import_pennylane_customer(TENANT, customer, PennylaneCustomer(55, "Dupont", ("b@x.fr",)), t(6))
    assert (customer.name, customer.emails) == ("Dupont SA", ("b@x.fr",))


def test_stockpit_order_in_mode_on_reserves_and_refuses_services() -> None:
    books = Books(delivery_notes_update_real_stock=True)
    bolt = stockpit_product(books, "bolt")
    order, outcome = Order.create_in_stockpit(books.settings, [(bolt, D(2)), (bolt, D(1))], t(1))
    books.subjects[order.order_id] = order
    books.post(outcome)
    assert (books.stock_product(bolt).real, books.stock_product(bolt).reserved) == (D(0), D(3))
    service, _ = Product.create_in_stockpit(TENANT, "install", None, is_service=True)
    with pytest.raises(DomainError, match="service"):
        Order.create_in_stockpit(books.settings, [(service, D(1))], t(1))


# --- transfers and adjustments --------------------------------------------------------------


def test_transfer_moves_real_stock_between_locations_and_may_go_negative() -> None:
    books = Books()
    bolt = stockpit_product(books, "bolt")
    _, outcome = ManualAdjustment.by_delta(TENANT, bolt, books.main, D(5), "opening count", t(0))
    books.post(outcome)
    _, outcome = Transfer.between(TENANT, bolt, books.main, books.van, D(7), t(1))
    books.post(outcome)
    assert books.stock_product(bolt).real == D(-2)
    assert books.stock_product(bolt, books.van).real == D(7)
    assert any(isinstance(e, NegativeStock) for e in books.events)
    with pytest.raises(DomainError, match="two different"):
        Transfer.between(TENANT, bolt, books.van, books.van, D(1), t(2))


def test_adjustment_to_a_counted_quantity() -> None:
    books = Books()
    bolt = stockpit_product(books, "bolt")
    _, outcome = ManualAdjustment.by_delta(TENANT, bolt, books.main, D(5), "delivery", t(0))
    books.post(outcome)
    adjustment, outcome = ManualAdjustment.to_count(
        books.stock_product(bolt), bolt, books.main, D(3), "inventory count", t(1)
    )
    books.post(outcome)
    assert adjustment.real_delta == D(-2)
    assert books.stock_product(bolt).real == D(3)
    assert books.entries[-1].note == "inventory count"
    with pytest.raises(DomainError, match="reason"):
        ManualAdjustment.by_delta(TENANT, bolt, books.main, D(1), " ", t(2))


# --- tenants --------------------------------------------------------------------------------


def test_documents_and_levels_of_another_tenant_are_refused() -> None:
    books = Books()
    with pytest.raises(DomainError, match="another tenant"):
        apply_pennylane_document(
            books.settings, invoice(1, (10, "1"), tenant="other"), t(0), products={}
        )
    books.apply(invoice(1, (10, "1")))
    key = books.level(10).key
    _, outcome = ManualAdjustment.by_delta(TENANT, books.product(10), books.main, D(1), "r", t(1))
    with pytest.raises(DomainError, match="another tenant"):
        post_movements("other", {key: books.levels[key]}, outcome.movements, t(1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(DomainError, match="timezone-aware"):
        DocumentVersion(TENANT, DocumentKind.INVOICE, 1, datetime(2026, 1, 1))  # noqa: DTZ001
