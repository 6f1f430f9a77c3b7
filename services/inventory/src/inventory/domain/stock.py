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
from typing import ClassVar, NamedTuple
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


class LedgerEntry(NamedTuple):
    """One append-only ledger line: a movement applied to a level, with the level's quantities
    after it (what its stock event reports). Never updated or deleted.

    Made for every line of every document, so it is one small immutable tuple that refers to
    its movement rather than copying the movement's fields; the ledger's columns are read
    through the properties below."""

    entry_id: UUID
    tenant_id: TenantId
    movement: StockMovement
    recorded_at: datetime
    # The level after this entry.
    real: Decimal
    reserved: Decimal
    incoming: Decimal

    @property
    def key(self) -> StockKey:
        return self.movement.key

    @property
    def delta(self) -> Effect:
        return self.movement.delta

    @property
    def product_id(self) -> UUID:
        return self.movement.key.product_id

    @property
    def location_id(self) -> UUID:
        return self.movement.key.location_id

    @property
    def real_delta(self) -> Decimal:
        return self.movement.delta.real

    @property
    def reserved_delta(self) -> Decimal:
        return self.movement.delta.reserved

    @property
    def incoming_delta(self) -> Decimal:
        return self.movement.delta.incoming

    @property
    def cause(self) -> Cause:
        return self.movement.cause

    @property
    def cause_kind(self) -> CauseKind:
        return self.movement.cause.kind

    @property
    def subject_id(self) -> UUID:
        return self.movement.cause.subject_id

    @property
    def reference(self) -> str:
        return self.movement.cause.reference

    @property
    def version(self) -> str | None:
        return self.movement.cause.version

    @property
    def lines(self) -> str | None:
        return self.movement.cause.lines

    @property
    def note(self) -> str | None:
        return self.movement.cause.note

    @property
    def available(self) -> Decimal:
        return self.real - self.reserved

    def stock_changed(self) -> StockChanged:
        """The entry's stock event: the level after it, with the entry's deltas."""
        delta = self.movement.delta
        return StockChanged(
            tenant_id=self.tenant_id,
            product_id=self.movement.key.product_id,
            location_id=self.movement.key.location_id,
            real=self.real,
            reserved=self.reserved,
            available=self.real - self.reserved,
            incoming=self.incoming,
            real_delta=delta.real,
            reserved_delta=delta.reserved,
            incoming_delta=delta.incoming,
            cause=self.movement.cause.describe(),
            ledger_entry_id=self.entry_id,
        )


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
        self, movement: StockMovement, recorded_at: datetime, entry_id: UUID | None = None
    ) -> tuple[LedgerEntry, list[DomainEvent]]:
        """Move the level; the ledger entry (which stands for its own `StockChanged`, see
        `LedgerEntry.stock_changed`; a new id unless given) and the negative-stock events the
        move reports."""
        key = movement.key
        if key.product_id != self.product_id or key.location_id != self.location_id:
            raise DomainError(f"movement for {key} applied to level {self.key}")
        delta = movement.delta
        available_before = self.real - self.reserved
        self.real += delta.real
        self.reserved += delta.reserved
        self.incoming += delta.incoming
        entry = LedgerEntry(
            new_uuid() if entry_id is None else entry_id,
            self.tenant_id,
            movement,
            recorded_at,
            self.real,
            self.reserved,
            self.incoming,
        )
        # Reported each time a movement pushes a measure down into (or further below) zero.
        if delta.real < ZERO and self.real < ZERO:
            return entry, [self._negative(StockMeasure.REAL, self.real, movement.cause)]
        available = self.real - self.reserved
        if available < available_before and available < ZERO:
            return entry, [self._negative(StockMeasure.AVAILABLE, available, movement.cause)]
        return entry, []

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
    """What `post_movements` produced: entries to append, levels it created, and its facts in
    the order they happened — each ledger entry standing for its `StockChanged` (made only when
    asked for: `events`), followed by the events its move reported."""

    entries: list[LedgerEntry] = field(default_factory=list)
    facts: list[LedgerEntry | DomainEvent] = field(default_factory=list)
    created_levels: list[StockLevel] = field(default_factory=list)

    @property
    def events(self) -> list[DomainEvent]:
        return [
            fact.stock_changed() if isinstance(fact, LedgerEntry) else fact for fact in self.facts
        ]


def post_movements(
    tenant_id: TenantId,
    levels: MutableMapping[StockKey, StockLevel],
    movements: Iterable[StockMovement],
    recorded_at: datetime,
    new_id: Callable[[], UUID] = new_uuid,
) -> Posting:
    """Apply movements to the levels (creating missing ones in `levels`) and write the ledger,
    each entry's id from `new_id` (a random UUID).

    The caller loads (and locks) the levels for `stock_keys(movements)` first.
    """
    require_aware(recorded_at, "recorded_at")
    posting = Posting()
    entries, facts = posting.entries, posting.facts
    for movement in movements:
        level = levels.get(movement.key)
        if level is None:
            level = StockLevel(tenant_id, movement.key.product_id, movement.key.location_id)
            levels[movement.key] = level
            posting.created_levels.append(level)
        elif level.tenant_id != tenant_id:
            raise DomainError("a stock level of another tenant cannot be moved")
        entry, reported = level.apply(movement, recorded_at, new_id())
        entries.append(entry)
        facts.append(entry)
        if reported:
            facts.extend(reported)
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
