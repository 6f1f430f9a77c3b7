"""Stock levels per product × location, the append-only ledger, and reconciliation (rule 6).

Aggregates (orders, returns, purchases, adjustments, transfers) never touch levels directly: they
keep the net stock effect they have posted so far (`Effect` per `StockKey`) and, whenever their
state changes, compute the effect they *should* have and emit `StockMovement`s for the
difference (`settle`). `post_movements` turns movements into ledger entries and updated levels,
so levels are, by construction, the sum of the ledger; `reconcile` checks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import ClassVar
from uuid import UUID

from stockpit_contracts.ids import new_uuid

from inventory.domain.errors import DomainError
from inventory.domain.events import DomainEvent, NegativeStock, StockChanged, StockMeasure
from inventory.domain.values import ZERO, TenantId, require_aware


class CauseKind(StrEnum):
    DOCUMENT = "document"  # a Pennylane document version changed an order's or return's effect
    REVERSAL = "reversal"  # a Pennylane document was deleted: its effect is reversed
    STOCKPIT_ORDER = "stockpit_order"  # an order created in Stockpit
    DELIVERY_NOTE = "delivery_note"
    RETURN_EDIT = "return_edit"  # a return edited or restocked in Stockpit
    PURCHASE = "purchase"
    RECEIPT = "receipt"
    PURCHASE_CLOSE = "purchase_close"
    MANUAL_ADJUSTMENT = "manual_adjustment"
    TRANSFER = "transfer"
    ARCHIVE = "archive"
    CANCEL = "cancel"
    MERGE = "merge"  # a duplicate product's stock moved to the product it was merged into
    COUNT = "count"  # a stock count sets real stock to the counted figures (rule 17)


@dataclass(frozen=True)
class Cause:
    """Why stock moved. `subject_id` is the aggregate whose effect changed (order, return,
    purchase, adjustment, transfer); `reference` the thing that triggered it (a Pennylane
    document "invoice:123", a delivery note or receipt id); `version` the document version and
    `lines` its Pennylane line ids behind this product's delta."""

    kind: CauseKind
    subject_id: UUID
    reference: str
    version: str | None = None
    lines: str | None = None
    note: str | None = None

    def describe(self) -> str:
        parts = [self.kind.value, self.reference]
        if self.version is not None:
            parts.append(f"version {self.version}")
        if self.lines:
            parts.append(f"lines {self.lines}")
        return " ".join(parts)


@dataclass(frozen=True, order=True)
class StockKey:
    product_id: UUID
    location_id: UUID

    # Keys are looked up in dicts again and again while posting: hash them once, and hash and
    # compare the UUIDs' integers (UUID's own __hash__ and __eq__ are Python calls). Computed
    # when made: nearly every key is hashed, and a cached_property takes a lock on first use.
    # Not a field: the codec stores fields, and the hash is not part of the key.
    _hash: ClassVar[int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.product_id.int, self.location_id.int)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StockKey):
            return NotImplemented
        return (
            self.product_id.int == other.product_id.int
            and self.location_id.int == other.location_id.int
        )


# Sort key of UUIDs: their own order (by value), compared in C rather than by UUID.__lt__.
id_order = attrgetter("int")


def key_order(key: StockKey) -> tuple[int, int]:
    """The keys' order as plain integers: the dataclass's order, but compared in C (sorting
    thousands of keys through the UUIDs' Python comparisons is slow)."""
    return (key.product_id.int, key.location_id.int)


@dataclass(frozen=True)
class Effect:
    """A net stock effect on one product × location."""

    real: Decimal = ZERO
    reserved: Decimal = ZERO
    incoming: Decimal = ZERO

    def __add__(self, other: Effect) -> Effect:
        return Effect(
            self.real + other.real,
            self.reserved + other.reserved,
            self.incoming + other.incoming,
        )

    def __sub__(self, other: Effect) -> Effect:
        return Effect(
            self.real - other.real,
            self.reserved - other.reserved,
            self.incoming - other.incoming,
        )

    @property
    def is_zero(self) -> bool:
        return self.real == ZERO and self.reserved == ZERO and self.incoming == ZERO


# The empty effect: effects are immutable, so one instance serves every default.
NO_EFFECT = Effect()


@dataclass(frozen=True)
class StockMovement:
    key: StockKey
    delta: Effect
    cause: Cause


def settle(
    applied: dict[StockKey, Effect],
    target: Mapping[StockKey, Effect],
    cause_for: Callable[[StockKey], Cause],
) -> list[StockMovement]:
    """Movements that bring `applied` to `target`; updates `applied` in place.

    Keys are visited in sorted order so the same change always yields the same entries.
    """
    movements: list[StockMovement] = []
    for key in sorted(set(applied) | set(target), key=key_order):
        before = applied.get(key, NO_EFFECT)
        after = target.get(key, NO_EFFECT)
        delta = after - before
        if delta.is_zero:
            continue
        movements.append(StockMovement(key, delta, cause_for(key)))
        if after.is_zero:
            del applied[key]
        else:
            applied[key] = after
    return movements


@dataclass(frozen=True)
class LedgerEntry:
    """One append-only ledger line. Never updated or deleted."""

    entry_id: UUID
    tenant_id: TenantId
    product_id: UUID
    location_id: UUID
    real_delta: Decimal
    reserved_delta: Decimal
    incoming_delta: Decimal
    cause_kind: CauseKind
    subject_id: UUID
    reference: str
    version: str | None
    lines: str | None
    note: str | None
    recorded_at: datetime

    @property
    def key(self) -> StockKey:
        return StockKey(self.product_id, self.location_id)

    @property
    def delta(self) -> Effect:
        return Effect(self.real_delta, self.reserved_delta, self.incoming_delta)


@dataclass
class StockLevel:
    """Current quantities of one product at one location. available = real − reserved."""

    tenant_id: TenantId
    product_id: UUID
    location_id: UUID
    real: Decimal = ZERO
    reserved: Decimal = ZERO
    incoming: Decimal = ZERO

    @property
    def key(self) -> StockKey:
        return StockKey(self.product_id, self.location_id)

    @property
    def available(self) -> Decimal:
        return self.real - self.reserved

    @property
    def effect(self) -> Effect:
        return Effect(self.real, self.reserved, self.incoming)

    def apply(
        self, movement: StockMovement, recorded_at: datetime
    ) -> tuple[LedgerEntry, list[DomainEvent]]:
        key = movement.key
        if key.product_id != self.product_id or key.location_id != self.location_id:
            raise DomainError(f"movement for {key} applied to level {self.key}")
        available_before = self.available
        self.real += movement.delta.real
        self.reserved += movement.delta.reserved
        self.incoming += movement.delta.incoming
        cause = movement.cause
        entry = LedgerEntry(
            entry_id=new_uuid(),
            tenant_id=self.tenant_id,
            product_id=self.product_id,
            location_id=self.location_id,
            real_delta=movement.delta.real,
            reserved_delta=movement.delta.reserved,
            incoming_delta=movement.delta.incoming,
            cause_kind=cause.kind,
            subject_id=cause.subject_id,
            reference=cause.reference,
            version=cause.version,
            lines=cause.lines,
            note=cause.note,
            recorded_at=recorded_at,
        )
        events: list[DomainEvent] = [
            StockChanged(
                tenant_id=self.tenant_id,
                product_id=self.product_id,
                location_id=self.location_id,
                real=self.real,
                reserved=self.reserved,
                available=self.available,
                incoming=self.incoming,
                real_delta=movement.delta.real,
                reserved_delta=movement.delta.reserved,
                incoming_delta=movement.delta.incoming,
                cause=cause.describe(),
                ledger_entry_id=entry.entry_id,
            )
        ]
        # Reported each time a movement pushes a measure down into (or further below) zero.
        if movement.delta.real < ZERO and self.real < ZERO:
            events.append(self._negative(StockMeasure.REAL, self.real, cause))
        elif self.available < available_before and self.available < ZERO:
            events.append(self._negative(StockMeasure.AVAILABLE, self.available, cause))
        return entry, events

    def _negative(self, measure: StockMeasure, quantity: Decimal, cause: Cause) -> NegativeStock:
        return NegativeStock(
            tenant_id=self.tenant_id,
            product_id=self.product_id,
            location_id=self.location_id,
            measure=measure,
            quantity=quantity,
            cause=cause.describe(),
            reference=cause.reference,
        )


@dataclass
class Posting:
    """What `post_movements` produced: entries to append, events to publish, levels it created."""

    entries: list[LedgerEntry] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)
    created_levels: list[StockLevel] = field(default_factory=list)


def post_movements(
    tenant_id: TenantId,
    levels: MutableMapping[StockKey, StockLevel],
    movements: Iterable[StockMovement],
    recorded_at: datetime,
) -> Posting:
    """Apply movements to the levels (creating missing ones in `levels`) and write the ledger.

    The caller loads (and locks) the levels for `stock_keys(movements)` first.
    """
    require_aware(recorded_at, "recorded_at")
    posting = Posting()
    for movement in movements:
        level = levels.get(movement.key)
        if level is None:
            level = StockLevel(tenant_id, movement.key.product_id, movement.key.location_id)
            levels[movement.key] = level
            posting.created_levels.append(level)
        elif level.tenant_id != tenant_id:
            raise DomainError("a stock level of another tenant cannot be moved")
        entry, events = level.apply(movement, recorded_at)
        posting.entries.append(entry)
        posting.events.extend(events)
    return posting


def stock_keys(movements: Iterable[StockMovement]) -> list[StockKey]:
    """The levels a batch of movements touches, sorted (lock them in this order: no deadlock)."""
    return sorted({movement.key for movement in movements}, key=key_order)


@dataclass(frozen=True)
class ReconciliationMismatch:
    key: StockKey
    level: Effect
    ledger: Effect


def reconcile(
    levels: Iterable[StockLevel], entries: Iterable[LedgerEntry]
) -> list[ReconciliationMismatch]:
    """Every product × location whose current levels differ from the sum of its ledger entries.

    An empty list means the books hold (rule 6). A level with no entries must be all zero, and
    entries with no level must sum to zero.
    """
    ledger: dict[StockKey, Effect] = {}
    for entry in entries:
        ledger[entry.key] = ledger.get(entry.key, Effect()) + entry.delta
    mismatches: list[ReconciliationMismatch] = []
    seen: set[StockKey] = set()
    for level in levels:
        seen.add(level.key)
        summed = ledger.get(level.key, Effect())
        if level.effect != summed:
            mismatches.append(ReconciliationMismatch(level.key, level.effect, summed))
    for key, summed in ledger.items():
        if key not in seen and not summed.is_zero:
            mismatches.append(ReconciliationMismatch(key, Effect(), summed))
    return sorted(mismatches, key=lambda mismatch: mismatch.key)
