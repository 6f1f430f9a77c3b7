"""Rule 15: likely duplicates are flagged, and a merge moves stock and Pennylane id to the
original, so later documents naming either id move the original and nothing counts twice."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from inventory.domain.adjustments import ManualAdjustment
from inventory.domain.catalog import Location, PennylaneProduct, Product
from inventory.domain.documents import DocumentKind, DocumentLine, DocumentVersion
from inventory.domain.duplicates import flag_duplicates, likely_original, merge, redirect
from inventory.domain.errors import DomainError
from inventory.domain.events import CreatedBecause, LikelyDuplicate
from inventory.domain.orders import Order
from inventory.domain.outcome import Outcome
from inventory.domain.pennylane_import import apply_pennylane_document
from inventory.domain.settings import TenantSettings
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
T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)
D = Decimal


def imported(pennylane_id: int, name: str, sku: str | None, *, service: bool = False) -> Product:
    product, _ = Product.from_pennylane(
        TENANT, PennylaneProduct(pennylane_id, name, sku, service), CreatedBecause.IMPORTED, T0
    )
    return product


def test_a_product_with_an_existing_sku_is_flagged_and_reported() -> None:
    original = imported(1, "Chaise", "CH-1")
    duplicate = imported(2, "Chaise (nouvelle)", "CH-1")
    events = flag_duplicates([duplicate], [original, duplicate])
    assert duplicate.likely_duplicate_of == original.product_id
    assert events == [
        LikelyDuplicate(TENANT, duplicate.product_id, 2, original.product_id, "sku", "CH-1")
    ]


def test_failing_a_sku_match_the_exact_name_flags_it() -> None:
    original = imported(1, "Table basse", None)
    other = imported(3, "Table", "TB-9")
    duplicate = imported(2, "Table basse", "TB-NEW")
    assert likely_original(duplicate, [other, original]) == (original, "name")
    flag_duplicates([duplicate], [other, original])
    assert duplicate.likely_duplicate_of == original.product_id


def test_products_whose_skus_differ_are_not_flagged_by_name() -> None:
    original = imported(1, "Table basse", "TB-1")
    other = imported(2, "Table basse", "TB-2")
    assert flag_duplicates([other], [original]) == []
    assert other.likely_duplicate_of is None


def test_a_sku_match_wins_over_a_name_match_and_nothing_else_is_flagged() -> None:
    by_name = imported(1, "Lampe", "L-1")
    by_sku = imported(3, "Lampe de bureau", "L-2")
    duplicate = imported(2, "Lampe", "L-2")
    assert likely_original(duplicate, [by_name, by_sku]) == (by_sku, "sku")
    unrelated = imported(4, "Tabouret", "T-1")
    assert flag_duplicates([unrelated], [by_name, by_sku]) == []
    assert unrelated.likely_duplicate_of is None


def test_copies_created_together_point_at_the_first_and_merged_ones_are_no_original() -> None:
    first, second, third = imported(1, "A", "X"), imported(2, "A", "X"), imported(3, "A", "X")
    flag_duplicates([first, second, third], [])
    assert first.likely_duplicate_of is None
    assert second.likely_duplicate_of == first.product_id
    assert third.likely_duplicate_of == first.product_id
    merged = imported(4, "B", "Y")
    merged.merged_into = first.product_id
    fresh = imported(5, "B", "Y")
    assert flag_duplicates([fresh], [merged]) == []


class Books:
    """Levels and ledger in memory; posting follows merges like the unit of work does."""

    def __init__(self) -> None:
        self.main = Location.create(TENANT, "Entrepôt")
        self.van = Location.create(TENANT, "Camionnette")
        self.settings = TenantSettings(TENANT, self.main.location_id)
        self.levels: dict[StockKey, StockLevel] = {}
        self.entries: list[LedgerEntry] = []
        self.merged: dict[object, object] = {}

    def post(self, outcome: Outcome) -> None:
        movements = redirect(outcome.movements, self.merged)  # type: ignore[arg-type]
        posting = post_movements(TENANT, self.levels, movements, T0)
        self.entries.extend(posting.entries)
        assert reconcile(self.levels.values(), self.entries) == []

    def real(self, product: Product, location: Location | None = None) -> Decimal:
        key = StockKey(product.product_id, (location or self.main).location_id)
        level = self.levels.get(key)
        return level.real if level else D(0)

    def merge(self, duplicate: Product, original: Product) -> None:
        levels = [
            level for key, level in self.levels.items() if key.product_id == duplicate.product_id
        ]
        result = merge(duplicate, original, levels)
        self.post(result.outcome)
        self.merged[duplicate.product_id] = original.product_id


def version(
    kind: DocumentKind, pennylane_id: int, product: int, quantity: str, minute: int
) -> DocumentVersion:
    line = DocumentLine(
        pennylane_id * 10, D(quantity), PennylaneProduct(product, "Chaise", "CH-1", False), "l"
    )
    return DocumentVersion(
        tenant_id=TENANT,
        kind=kind,
        pennylane_id=pennylane_id,
        updated_at=T0 + timedelta(minutes=minute),
        draft=False,
        lines=(line,),
    )


def test_merge_moves_stock_per_location_through_merge_entries() -> None:
    books = Books()
    original, duplicate = imported(1, "Chaise", "CH-1"), imported(2, "Chaise", "CH-1")
    for product, location, delta in (
        (original, books.main, "10"),
        (duplicate, books.main, "4"),
        (duplicate, books.van, "3"),
    ):
        _, outcome = ManualAdjustment.by_delta(TENANT, product, location, D(delta), "count", T0)
        books.post(outcome)
    before = len(books.entries)
    books.merge(duplicate, original)
    merge_entries = books.entries[before:]
    assert {e.cause_kind for e in merge_entries} == {CauseKind.MERGE}
    assert books.real(original) == D(14)
    assert books.real(original, books.van) == D(3)
    assert books.real(duplicate) == D(0)
    assert books.real(duplicate, books.van) == D(0)
    assert duplicate.merged_into == original.product_id
    assert not duplicate.active
    assert duplicate.likely_duplicate_of is None


def test_reserved_and_incoming_move_too() -> None:
    books = Books()
    original, duplicate = imported(1, "Chaise", "CH-1"), imported(2, "Chaise", "CH-1")
    key = StockKey(duplicate.product_id, books.main.location_id)
    level = StockLevel(TENANT, duplicate.product_id, books.main.location_id, D(5), D(2), D(7))
    result = merge(duplicate, original, [level])
    moved = {(m.key.product_id, m.delta) for m in result.outcome.movements}
    assert moved == {
        (key.product_id, Effect(D(-5), D(-2), D(-7))),
        (original.product_id, Effect(D(5), D(2), D(7))),
    }


def test_the_pennylane_id_is_taken_over_by_an_unlinked_original() -> None:
    original, _ = Product.create_in_stockpit(TENANT, "Chaise", "CH-1")
    duplicate = imported(2, "Chaise", "CH-1")
    merge(duplicate, original, [])
    assert original.pennylane_id == 2
    assert original.pennylane_sku == "CH-1"
    assert duplicate.pennylane_id is None


def test_a_linked_original_keeps_its_id_and_the_duplicate_keeps_its_own_as_an_alias() -> None:
    original, duplicate = imported(1, "Chaise", "CH-1"), imported(2, "Chaise", "CH-1")
    merge(duplicate, original, [])
    assert (original.pennylane_id, duplicate.pennylane_id) == (1, 2)


def test_after_the_merge_documents_naming_either_id_move_the_original_once() -> None:
    books = Books()
    original, duplicate = imported(1, "Chaise", "CH-1"), imported(2, "Chaise", "CH-1")
    # Before the merge: an invoice of 4 and a purchase order of 3 name the duplicate.
    invoice = version(DocumentKind.INVOICE, 50, 2, "4", 0)
    po = version(DocumentKind.PURCHASE_ORDER, 60, 2, "3", 0)
    orders: dict[int, Order] = {}
    for document in (invoice, po):
        result = apply_pennylane_document(books.settings, document, T0, products={2: duplicate})
        assert result.order is not None
        orders[document.pennylane_id] = result.order
        books.post(result.outcome)
    assert books.real(duplicate) == D(-7)
    books.merge(duplicate, original)
    assert books.real(original) == D(-7)
    assert books.real(duplicate) == D(0)
    # Lookups by either Pennylane id now give the original (the repository follows merges).
    by_pennylane_id = {1: original, 2: original}
    # A later version of the invoice (an annotation edit): nothing moves.
    again = replace(invoice, updated_at=T0 + timedelta(minutes=5))
    result = apply_pennylane_document(
        books.settings, again, T0, products=by_pennylane_id, order=orders[50]
    )
    books.post(result.outcome)
    assert books.real(original) == D(-7)
    assert books.real(duplicate) == D(0)
    # The old purchase order is deleted in Pennylane: its 3 units come back to the original.
    deletion = DocumentVersion.deletion(
        TENANT, DocumentKind.PURCHASE_ORDER, 60, T0 + timedelta(minutes=6)
    )
    result = apply_pennylane_document(
        books.settings, deletion, T0, products=by_pennylane_id, order=orders[60]
    )
    books.post(result.outcome)
    assert books.real(original) == D(-4)
    # A new invoice naming the duplicate's id, and one naming the original's: the original.
    for pennylane_id, product in ((70, 2), (80, 1)):
        result = apply_pennylane_document(
            books.settings,
            version(DocumentKind.INVOICE, pennylane_id, product, "1", 7),
            T0,
            products=by_pennylane_id,
        )
        books.post(result.outcome)
    assert books.real(original) == D(-6)
    assert books.real(duplicate) == D(0)


def test_merges_that_make_no_sense_are_refused() -> None:
    original, duplicate = imported(1, "Chaise", "CH-1"), imported(2, "Chaise", "CH-1")
    with pytest.raises(DomainError, match="itself"):
        merge(original, original, [])
    service = imported(3, "Chaise", "CH-1", service=True)
    with pytest.raises(DomainError, match="service"):
        merge(service, original, [])
    other_tenant = replace(imported(4, "Chaise", "CH-1"), tenant_id="other")
    with pytest.raises(DomainError, match="tenants"):
        merge(other_tenant, original, [])
    merge(duplicate, original, [])
    with pytest.raises(DomainError, match="already merged"):
        merge(duplicate, original, [])
    third = imported(5, "Chaise", "CH-1")
    with pytest.raises(DomainError, match="merged or deleted"):
        merge(third, duplicate, [])
