"""Property tests: rule 7 (versions in any order, any number of times) and rule 6 (levels
always equal the ledger) over random operation sequences."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st
from inventory.domain.catalog import Location, PennylaneProduct, Product
from inventory.domain.documents import (
    DocumentKind,
    DocumentLine,
    DocumentVersion,
    SourceDocument,
    supersedes,
)
from inventory.domain.errors import DomainError
from inventory.domain.orders import Order
from inventory.domain.outcome import Outcome
from inventory.domain.pennylane_import import apply_pennylane_document
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import (
    Effect,
    LedgerEntry,
    StockKey,
    StockLevel,
    key_order,
    post_movements,
    reconcile,
)

TENANT = "acme"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
PRODUCTS = (10, 11, 12)
SERVICE = 12  # booked on a 706 account; its account never changes within these tests (rule 12)
QUOTE = 7


def version_strategy(kind: DocumentKind, pennylane_id: int) -> st.SearchStrategy[DocumentVersion]:
    line = st.tuples(
        st.sampled_from((*PRODUCTS, None)),
        st.integers(min_value=-2, max_value=9),
    )

    def build(
        minute: int, draft: bool, deleted: bool, lines: list[tuple[int | None, int]]
    ) -> DocumentVersion:
        at = T0 + timedelta(minutes=minute)
        if deleted:
            return DocumentVersion.deletion(TENANT, kind, pennylane_id, at)
        return DocumentVersion(
            TENANT,
            kind,
            pennylane_id,
            at,
            draft=draft and kind is not DocumentKind.PURCHASE_ORDER,
            quote_id=QUOTE,
            lines=tuple(
                DocumentLine(
                    index,
                    Decimal(quantity),
                    PennylaneProduct(pid, f"P{pid}", None, pid == SERVICE) if pid else None,
                )
                for index, (pid, quantity) in enumerate(lines)
            ),
        )

    return st.builds(
        build,
        st.integers(min_value=0, max_value=4),  # few markers: ties happen
        st.booleans(),
        st.integers(min_value=0, max_value=5).map(lambda n: n == 0),
        st.lists(line, max_size=4),
    )


class Memory:
    def __init__(self, delivery_notes_update_real_stock: bool, restock: bool) -> None:
        self.location = Location.create(TENANT, "Main")
        self.settings = TenantSettings(
            TENANT,
            self.location.location_id,
            delivery_notes_update_real_stock=delivery_notes_update_real_stock,
            restock_on_credit_note=restock,
        )
        self.products: dict[int, Product] = {}
        self.orders: list[Order] = []
        self.return_: Return | None = None
        self.levels: dict[StockKey, StockLevel] = {}
        self.entries: list[LedgerEntry] = []

    def post(self, outcome: Outcome) -> None:
        self.entries.extend(post_movements(TENANT, self.levels, outcome.movements, T0).entries)

    def order_for(self, version: DocumentVersion) -> Order | None:
        """As the service layer finds it: the order holding the document, else its quote's."""
        for order in self.orders:
            if order.holds(version):
                return order
        for order in self.orders:
            if version.quote_id is not None and order.quote_id == version.quote_id:
                return order
        return None

    def apply(self, version: DocumentVersion) -> None:
        order = None if version.is_credit_note else self.order_for(version)
        result = apply_pennylane_document(
            self.settings,
            version,
            T0,
            products=self.products,
            order=order,
            return_=self.return_ if version.is_credit_note else None,
        )
        if result.order is not None and order is None:
            self.orders.append(result.order)
        self.return_ = result.return_ or self.return_
        for product in result.new_products:
            assert product.pennylane_id is not None
            self.products[product.pennylane_id] = product
        self.post(result.outcome)

    def stock(self) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
        by_product = {p.product_id: pid for pid, p in self.products.items()}
        return {
            (by_product[key.product_id], "main"): (level.real, level.reserved)
            for key, level in self.levels.items()
            if level.real or level.reserved
        }


def latest(versions: list[DocumentVersion]) -> DocumentVersion:
    best: DocumentVersion | None = None
    stored: SourceDocument | None = None
    for version in versions:
        if supersedes(version, stored):
            best, stored = version, SourceDocument.from_version(version, ())
    assert best is not None
    return best


def counted_totals(version: DocumentVersion) -> dict[int, Decimal]:
    totals: dict[int, Decimal] = {}
    if version.deleted or version.draft:
        return totals
    for line in version.lines:
        if line.moves_stock:
            assert line.product is not None
            totals[line.product.pennylane_id] = (
                totals.get(line.product.pennylane_id, Decimal(0)) + line.quantity
            )
    return totals


@settings(max_examples=200, deadline=None)
@given(
    po_versions=st.lists(version_strategy(DocumentKind.PURCHASE_ORDER, 1), min_size=1, max_size=4),
    invoice_versions=st.lists(version_strategy(DocumentKind.INVOICE, 2), min_size=1, max_size=4),
    mode_on=st.booleans(),
    data=st.data(),
)
def test_any_order_and_repetition_of_versions_equals_one_application_of_the_latest(
    po_versions: list[DocumentVersion],
    invoice_versions: list[DocumentVersion],
    mode_on: bool,
    data: st.DataObject,
) -> None:
    """Rule 7 and rule 8 together: a purchase order and an invoice of one quote, each with its
    versions, delivered shuffled and duplicated, end as the latest version of each applied once,
    and as the oracle max(Σ order, Σ invoice) per product."""
    deliveries = data.draw(
        st.lists(st.sampled_from(po_versions + invoice_versions), min_size=1, max_size=12)
    )
    deliveries += po_versions + invoice_versions  # every version arrives at least once
    deliveries = data.draw(st.permutations(deliveries))
    shuffled = Memory(mode_on, restock=False)
    for version in deliveries:
        shuffled.apply(version)
    once = Memory(mode_on, restock=False)
    last_po, last_invoice = latest(po_versions), latest(invoice_versions)
    for version in (last_po, last_invoice):
        once.apply(version)
    assert shuffled.stock() == once.stock()
    assert reconcile(shuffled.levels.values(), shuffled.entries) == []

    po_totals, invoice_totals = counted_totals(last_po), counted_totals(last_invoice)
    expected: dict[tuple[int, str], tuple[Decimal, Decimal]] = {}
    for pid in set(po_totals) | set(invoice_totals):
        sold = max(po_totals.get(pid, Decimal(0)), invoice_totals.get(pid, Decimal(0)), Decimal(0))
        if sold:
            expected[(pid, "main")] = (Decimal(0), sold) if mode_on else (-sold, Decimal(0))
    assert shuffled.stock() == expected


@settings(max_examples=100, deadline=None)
@given(
    versions=st.lists(version_strategy(DocumentKind.CREDIT_NOTE, 3), min_size=1, max_size=5),
    data=st.data(),
)
def test_credit_note_versions_in_any_order_equal_the_latest_once(
    versions: list[DocumentVersion], data: st.DataObject
) -> None:
    deliveries = data.draw(
        st.permutations(versions + data.draw(st.lists(st.sampled_from(versions))))
    )
    shuffled, once = Memory(False, restock=True), Memory(False, restock=True)
    for version in deliveries:
        shuffled.apply(version)
    once.apply(latest(versions))
    assert shuffled.stock() == once.stock()


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            (
                "po",
                "invoice",
                "delete_po",
                "deliver",
                "archive",
                "cancel",
                "adjust",
                "transfer",
                "credit",
                "return_edit",
            )
        ),
        st.sampled_from(PRODUCTS),
        st.integers(min_value=1, max_value=6),
        st.integers(min_value=1, max_value=3),  # which document / order
    ),
    max_size=40,
)


def _stockpit_move(
    memory: Memory, van: Location, name: str, pid: int, quantity: int, at: datetime
) -> Outcome:
    """A manual adjustment at the default location, or a transfer to the van."""
    from inventory.domain.adjustments import ManualAdjustment, Transfer

    if name == "adjust":
        _, outcome = ManualAdjustment.by_delta(
            TENANT, memory.products[pid], memory.location, Decimal(quantity - 3), "count", at
        )
    else:
        _, outcome = Transfer.between(
            TENANT, memory.products[pid], memory.location, van, Decimal(quantity), at
        )
    return outcome


@settings(max_examples=150, deadline=None)
@given(operations=OPERATIONS, mode_on=st.booleans(), restock=st.booleans())
def test_levels_equal_the_ledger_after_any_sequence_of_operations(
    operations: list[tuple[str, int, int, int]], mode_on: bool, restock: bool
) -> None:
    """Rule 6: after any mix of documents and Stockpit actions (refused ones included), levels
    equal the ledger's sum and every aggregate's effect equals its own ledger entries."""
    memory = Memory(mode_on, restock)
    van = Location.create(TENANT, "Van")
    orders: dict[int, Order] = {}
    returns: dict[int, Return] = {}
    subjects: dict[object, Order | Return] = {}
    for clock, (name, pid, quantity, which) in enumerate(operations):
        at = T0 + timedelta(minutes=clock)
        line = DocumentLine(1, Decimal(quantity), PennylaneProduct(pid, f"P{pid}", None, False))
        try:
            if name in ("po", "invoice", "delete_po"):
                kind = DocumentKind.INVOICE if name == "invoice" else DocumentKind.PURCHASE_ORDER
                version = (
                    DocumentVersion.deletion(TENANT, kind, which, at)
                    if name == "delete_po"
                    else DocumentVersion(TENANT, kind, which, at, lines=(line,), quote_id=which)
                )
                result = apply_pennylane_document(
                    memory.settings, version, at, products=memory.products, order=orders.get(which)
                )
                assert result.order is not None
                orders[which] = result.order
                subjects[result.order.order_id] = result.order
                for product in result.new_products:
                    assert product.pennylane_id is not None
                    memory.products[product.pennylane_id] = product
                memory.post(result.outcome)
            elif name == "credit":
                version = DocumentVersion(
                    TENANT, DocumentKind.CREDIT_NOTE, which, at, lines=(line,)
                )
                result = apply_pennylane_document(
                    memory.settings,
                    version,
                    at,
                    products=memory.products,
                    return_=returns.get(which),
                )
                assert result.return_ is not None
                returns[which] = result.return_
                subjects[result.return_.return_id] = result.return_
                for product in result.new_products:
                    assert product.pennylane_id is not None
                    memory.products[product.pennylane_id] = product
                memory.post(result.outcome)
            elif name == "return_edit" and which in returns and pid in memory.products:
                memory.post(
                    returns[which].edit(
                        at,
                        quantities={memory.products[pid].product_id: Decimal(quantity)},
                        restock=quantity % 2 == 0,
                    )
                )
            elif name == "deliver" and which in orders and pid in memory.products:
                _, outcome = orders[which].deliver(
                    {memory.products[pid].product_id: Decimal(quantity)},
                    at,
                    location=van if quantity % 2 else None,
                )
                memory.post(outcome)
            elif name == "archive" and which in orders:
                memory.post(orders[which].archive(at))
            elif name == "cancel" and which in orders:
                memory.post(orders[which].cancel(at))
            elif name in ("adjust", "transfer") and pid in memory.products:
                memory.post(_stockpit_move(memory, van, name, pid, quantity, at))
        except DomainError:
            pass  # refused commands must leave everything as it was: checked below
        assert reconcile(memory.levels.values(), memory.entries) == []
        for subject_id, subject in subjects.items():
            summed: dict[StockKey, Effect] = {}
            for entry in memory.entries:
                if entry.subject_id == subject_id:
                    summed[entry.key] = summed.get(entry.key, Effect()) + entry.delta
            assert {k: v for k, v in summed.items() if not v.is_zero} == subject.applied
            assert subject.applied == subject.target_effect()


@given(st.lists(st.tuples(st.uuids(), st.uuids()), max_size=30))
def test_keys_sort_the_same_by_key_order_as_by_the_dataclass_order(
    pairs: list[tuple[UUID, UUID]],
) -> None:
    """Levels are locked in this order by every transaction (no deadlock): the fast sort key
    must give exactly the dataclass's order, and equal keys must hash alike."""
    keys = [StockKey(product, location) for product, location in pairs]
    assert sorted(keys, key=key_order) == sorted(keys)
    for key in keys:
        assert hash(StockKey(key.product_id, key.location_id)) == hash(key)


SETTLEMENT_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            (
                "invoice",
                "deliver",
                "cancel",
                "archive",
                "credit",
                "draft_credit",
                "delete_credit",
                "restock",
                "edit_return",
            )
        ),
        st.sampled_from((10, 11)),
        st.integers(min_value=1, max_value=6),
        st.integers(min_value=1, max_value=2),  # which invoice / credit note
    ),
    max_size=30,
)


def _credit_history_step(
    memory: Memory,
    van: Location,
    orders: dict[int, Order],
    returns: dict[int, Return],
    credit_ids: dict[int, int],
    operation: tuple[str, int, int, int],
    at: datetime,
) -> None:
    """One operation of a credit-note history (a refused one raises DomainError)."""
    name, pid, quantity, which = operation
    product = PennylaneProduct(pid, f"P{pid}", None, False)
    if name == "invoice" and which not in orders:
        lines = (DocumentLine(1, Decimal(quantity), product),)
        version = DocumentVersion(TENANT, DocumentKind.INVOICE, which, at, lines=lines)
        result = apply_pennylane_document(memory.settings, version, at, products=memory.products)
        assert result.order is not None
        orders[which] = result.order
        memory.products.update({p.pennylane_id: p for p in result.new_products if p.pennylane_id})
        memory.post(result.outcome)
    elif name in ("credit", "draft_credit", "delete_credit"):
        if name == "delete_credit":
            if not credit_ids:
                return
            credit_id = sorted(credit_ids)[quantity % len(credit_ids)]
            version = DocumentVersion.deletion(TENANT, DocumentKind.CREDIT_NOTE, credit_id, at)
        else:
            credit_id = 100 + len(credit_ids)
            credit_ids[credit_id] = which
            version = DocumentVersion(
                TENANT,
                DocumentKind.CREDIT_NOTE,
                credit_id,
                at,
                draft=name == "draft_credit",
                credited_invoice_id=which,
                lines=(DocumentLine(1, Decimal(-quantity), product),),
            )
        known = returns.get(credit_id)
        settling = (
            next(o for o in orders.values() if o.order_id == known.order_id)
            if known is not None and known.order_id is not None
            else orders.get(credit_ids[credit_id])
        )
        result = apply_pennylane_document(
            memory.settings,
            version,
            at,
            products=memory.products,
            return_=known,
            credited_order=settling,
        )
        assert result.return_ is not None
        returns[credit_id] = result.return_
        memory.products.update({p.pennylane_id: p for p in result.new_products if p.pennylane_id})
        memory.post(result.outcome)
    elif name in ("restock", "edit_return") and returns and pid in memory.products:
        credit_id = sorted(returns)[quantity % len(returns)]
        return_ = returns[credit_id]
        order = orders.get(credit_ids[credit_id])
        settling = order if return_.settled_by_order else None
        if name == "restock":
            memory.post(return_.restock_now(at, order=settling))
        else:
            memory.post(
                return_.edit(
                    at,
                    quantities={memory.products[pid].product_id: Decimal(quantity)},
                    order=settling,
                )
            )
    elif name == "deliver" and which in orders and pid in memory.products:
        _, outcome = orders[which].deliver(
            {memory.products[pid].product_id: Decimal(quantity)},
            at,
            location=van if quantity % 2 else None,
        )
        memory.post(outcome)
    elif name == "archive" and which in orders:
        memory.post(orders[which].archive(at))
    elif name == "cancel" and which in orders:
        memory.post(orders[which].cancel(at))


def _check_credit_settlement(
    memory: Memory, orders: dict[int, Order], returns: dict[int, Return]
) -> None:
    """(a), (b) and (c) of the test below, after each operation."""
    # (c)
    assert reconcile(memory.levels.values(), memory.entries) == []
    subjects: list[Order | Return] = [*orders.values(), *returns.values()]
    for subject in subjects:
        subject_id = subject.order_id if isinstance(subject, Order) else subject.return_id
        summed: dict[StockKey, Effect] = {}
        for entry in memory.entries:
            if entry.subject_id == subject_id:
                summed[entry.key] = summed.get(entry.key, Effect()) + entry.delta
        assert {k: v for k, v in summed.items() if not v.is_zero} == subject.applied
        assert subject.applied == subject.target_effect()
    for order in orders.values():
        real: dict[UUID, Decimal] = {}
        reserved: dict[UUID, Decimal] = {}
        own_returns = [r for r in returns.values() if r.order_id == order.order_id]
        own: list[Order | Return] = [order, *own_returns]
        for subject in own:
            for key, effect in subject.applied.items():
                real[key.product_id] = real.get(key.product_id, Decimal(0)) + effect.real
                reserved[key.product_id] = (
                    reserved.get(key.product_id, Decimal(0)) + effect.reserved
                )
        # (a)
        assert all(quantity <= 0 for quantity in real.values()), real
        if order.status.value == "cancelled":
            assert not any(real.values())
            assert not any(reserved.values())
        # (b)
        if order.status.value in ("archived", "cancelled"):
            assert not any(reserved.values())
        credited: dict[UUID, Decimal] = {}
        for return_ in own_returns:
            if return_.status.value == "open":
                for product_id, quantity in return_.quantities.items():
                    credited[product_id] = credited.get(product_id, Decimal(0)) + quantity
        for product_id, ordered in order.ordered_quantities().items():
            if credited.get(product_id, Decimal(0)) >= ordered:
                assert reserved.get(product_id, Decimal(0)) == 0


@settings(max_examples=300, deadline=None)
@given(operations=SETTLEMENT_OPERATIONS, mode_on=st.booleans(), restock=st.booleans())
def test_credit_notes_settle_their_orders_whatever_the_history(
    operations: list[tuple[str, int, int, int]], mode_on: bool, restock: bool
) -> None:
    """Rules 6, 10, 11 over any history of invoices, partial deliveries, cancels, archives,
    credit notes (drafts, deletions) and Stockpit restocks and edits of their returns:

    (a) an order and its returns together never put back more than the order took out: their
        net real effect per product is never positive, and zero once the order is cancelled;
    (b) no reservation outlives an order that is archived, cancelled or fully credited;
    (c) levels equal the ledger, and every aggregate's effect equals its own entries.
    """
    memory = Memory(mode_on, restock)
    van = Location.create(TENANT, "Van")
    orders: dict[int, Order] = {}
    returns: dict[int, Return] = {}
    credit_ids: dict[int, int] = {}  # credit note id -> credited invoice
    for clock, operation in enumerate(operations):
        at = T0 + timedelta(minutes=clock)
        # A refused command must change nothing: checked below.
        with contextlib.suppress(DomainError):
            _credit_history_step(memory, van, orders, returns, credit_ids, operation, at)
        _check_credit_settlement(memory, orders, returns)


@settings(max_examples=200, deadline=None)
@given(
    versions=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(PRODUCTS),
                st.integers(min_value=0, max_value=9),
                st.booleans(),  # the product's account when this version was read
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=5,
    ),
    kind=st.sampled_from((DocumentKind.INVOICE, DocumentKind.PURCHASE_ORDER)),
    mode_on=st.booleans(),
    import_services=st.booleans(),
)
def test_goods_or_service_is_decided_when_a_product_first_appears_on_a_document(
    versions: list[list[tuple[int, int, bool]]],
    kind: DocumentKind,
    mode_on: bool,
    import_services: bool,
) -> None:
    """Rule 12: versions of one document read in order, each seeing its products' accounts of
    the moment, end on the latest version's quantities of the products that were goods when
    they first appeared on the document; later moves never reverse or replay them."""
    memory = Memory(mode_on, restock=False)
    memory.settings = TenantSettings(
        TENANT,
        memory.location.location_id,
        delivery_notes_update_real_stock=mode_on,
        import_services=import_services,
    )
    first_seen_service: dict[int, bool] = {}
    for minute, lines in enumerate(versions):
        for pid, _, is_service in lines:
            first_seen_service.setdefault(pid, is_service)
        memory.apply(
            DocumentVersion(
                TENANT,
                kind,
                1,
                T0 + timedelta(minutes=minute),
                lines=tuple(
                    DocumentLine(
                        index, Decimal(quantity), PennylaneProduct(pid, f"P{pid}", None, service)
                    )
                    for index, (pid, quantity, service) in enumerate(lines)
                ),
            )
        )
    expected: dict[tuple[int, str], tuple[Decimal, Decimal]] = {}
    for pid, quantity, _ in versions[-1]:
        if not first_seen_service[pid]:
            real, reserved = expected.get((pid, "main"), (Decimal(0), Decimal(0)))
            expected[(pid, "main")] = (
                (real, reserved + quantity) if mode_on else (real - quantity, reserved)
            )
    assert memory.stock() == {key: value for key, value in expected.items() if any(value)}
    assert reconcile(memory.levels.values(), memory.entries) == []
