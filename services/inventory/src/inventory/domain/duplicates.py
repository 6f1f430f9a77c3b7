"""Likely duplicates and their merge (rule 15).

A product whose Pennylane id changed (deleted and recreated there, say) cannot be recognised: it
becomes a new product, as the spec promises. So every product imported from Pennylane (from
the catalog or named on a document) is compared with the tenant's products: the same SKU, or
failing a SKU match the exact same name, marks it as a likely duplicate of that product
(`Product.likely_duplicate_of`) and reports it; two products whose SKUs differ are never
flagged by name (`LikelyDuplicate`, a problem for operators).

A user may then merge the duplicate into the original (`merge`):
- its stock per location moves to the original's same location through ledger entries of
  cause "merge" (real, reserved and incoming alike), so levels still equal the ledger;
- its Pennylane id moves to the original: taken over when the original has none (the original
  is then linked and syncs name and SKU through it), otherwise kept by the duplicate as an
  alias that document lookups follow to the original;
- it is deactivated and marked `merged_into`; stock effects posted on it later (a later
  version of a document applied before the merge, a delivery note of an older order) are
  posted on the original instead (`redirect`), so either Pennylane id moves the original's
  stock and nothing is counted twice;
- nothing is written to Pennylane.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from inventory.domain.catalog import Product
from inventory.domain.errors import DomainError
from inventory.domain.events import DomainEvent, LikelyDuplicate
from inventory.domain.outcome import Outcome
from inventory.domain.stock import (
    NO_EFFECT,
    Cause,
    CauseKind,
    StockKey,
    StockLevel,
    StockMovement,
)


def _candidate(product: Product) -> bool:
    return not product.deleted and product.merged_into is None


def likely_original(product: Product, others: Sequence[Product]) -> tuple[Product, str] | None:
    """The product `product` likely duplicates, and on what it matched ("sku" or "name").

    Among several matches the first in `others` wins; products not flagged themselves come
    first, so a third copy points at the original rather than at the second copy."""
    pool = sorted(
        (p for p in others if p.product_id != product.product_id and _candidate(p)),
        key=lambda p: p.likely_duplicate_of is not None,
    )
    sku = (product.sku or "").strip()
    if sku:
        for other in pool:
            if (other.sku or "").strip() == sku:
                return other, "sku"
    for other in pool:
        # Two different SKUs say two different products, whatever their names.
        other_sku = (other.sku or "").strip()
        if other.name == product.name and not (sku and other_sku and sku != other_sku):
            return other, "name"
    return None


def flag_duplicates(
    new_products: Sequence[Product], existing: Iterable[Product]
) -> list[DomainEvent]:
    """Flag each new product that likely duplicates an existing one or one created before it
    (in `new_products` order); returns the reports."""
    others = [p for p in existing if p.product_id not in {n.product_id for n in new_products}]
    events: list[DomainEvent] = []
    for product in new_products:
        found = likely_original(product, others)
        others.append(product)
        if found is None or product.likely_duplicate_of is not None:
            continue
        original, matched_on = found
        product.likely_duplicate_of = original.product_id
        events.append(
            LikelyDuplicate(
                product.tenant_id,
                product.product_id,
                product.pennylane_id,
                original.product_id,
                matched_on,
                (product.sku or "") if matched_on == "sku" else product.name,
            )
        )
    return events


@dataclass
class Merge:
    """What a merge changes: both products (save the duplicate first: a Pennylane id taken
    over must leave it before the original takes it) and the stock movements."""

    duplicate: Product
    original: Product
    outcome: Outcome


def merge(duplicate: Product, original: Product, levels: Sequence[StockLevel]) -> Merge:
    """Merge `duplicate` into `original`; `levels` are the duplicate's current stock levels
    (locked by the caller, so nothing moves them meanwhile)."""
    if duplicate.tenant_id != original.tenant_id:
        raise DomainError("products of two tenants cannot be merged")
    if duplicate.product_id == original.product_id:
        raise DomainError("a product cannot be merged into itself")
    if duplicate.merged_into is not None:
        raise DomainError(f"product {duplicate.name!r} was already merged")
    if original.merged_into is not None or original.deleted:
        raise DomainError(f"product {original.name!r} was merged or deleted: merge into another")
    if duplicate.is_service != original.is_service:
        raise DomainError("a service and a product cannot be merged: services carry no stock")
    cause = Cause(
        CauseKind.MERGE,
        duplicate.product_id,
        f"product:{duplicate.product_id}",
        note=f"merged into {original.product_id}",
    )
    movements: list[StockMovement] = []
    for level in levels:
        if level.product_id != duplicate.product_id:
            raise DomainError("a level of another product was passed")
        if level.effect.is_zero:
            continue
        movements.append(StockMovement(level.key, NO_EFFECT - level.effect, cause))
        movements.append(
            StockMovement(StockKey(original.product_id, level.location_id), level.effect, cause)
        )
    if original.pennylane_id is None and duplicate.pennylane_id is not None:
        original.pennylane_id = duplicate.pennylane_id
        original.pennylane_name = duplicate.pennylane_name
        original.pennylane_sku = duplicate.pennylane_sku
        original.pennylane_updated_at = duplicate.pennylane_updated_at
        duplicate.pennylane_id = None
    duplicate.merged_into = original.product_id
    duplicate.likely_duplicate_of = None
    duplicate.active = False
    if original.likely_duplicate_of == duplicate.product_id:
        original.likely_duplicate_of = None
    return Merge(duplicate, original, Outcome(movements=movements))


def redirect(
    movements: Sequence[StockMovement], merged_into: Mapping[UUID, UUID]
) -> list[StockMovement]:
    """Movements on merged products posted on the products they were merged into (the merge's
    own movements excepted). `merged_into` is followed to its end."""

    def final(product_id: UUID) -> UUID:
        seen = {product_id}
        while product_id in merged_into:
            product_id = merged_into[product_id]
            if product_id in seen:
                raise DomainError("products merged into each other")
            seen.add(product_id)
        return product_id

    return [
        movement
        if movement.cause.kind is CauseKind.MERGE or movement.key.product_id not in merged_into
        else StockMovement(
            StockKey(final(movement.key.product_id), movement.key.location_id),
            movement.delta,
            movement.cause,
        )
        for movement in movements
    ]
