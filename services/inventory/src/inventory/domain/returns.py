"""Returns, created for every imported credit note (avoir).

A return restocks (real += q at its location) only when `restock` is on. `restock` is taken
from the "restock on credit note" setting when the credit note first counts (like an order's
mode, it stays with the return), and the user may change it later: `restock_now` is the
"restock" action, `edit` changes quantities or the flag. Every change posts the difference.

Returned quantity per product = Σ |line quantity| of the credit note's stock-moving lines:
Pennylane writes credit notes with negative amounts and the sign of their quantities is not
documented, so the magnitude is what was returned.

A return of a known invoice's order is settled by that order (rules 10 and 11, see `orders`):
the return records what was credited and whether it restocks, and the order posts the effect
(reservation released first, returned goods capped by what the order still has out, restocked
only when `restock` is on). Such a return has no stock effect of its own (`settled_by_order`);
every change to it is passed to its order (`Order.settle_credit`). A return without a known order
(no credited invoice, or one never imported, e.g. dated before the connection) restocks its
whole quantity itself; it is attached to the order when a later version of its credit note
finds it (the poller reads an invoice before the credit notes made after it).

Once a return was edited in Stockpit, a later credit note version does not overwrite the
edited quantities (a Conflict is reported instead); a deletion still withdraws the return.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID, uuid4

from inventory.domain.documents import (
    DocumentKind,
    DocumentVersion,
    LineClasses,
    SourceDocument,
    SourceLine,
    document_reference,
    supersedes,
)
from inventory.domain.errors import DomainError
from inventory.domain.events import Conflict, ConflictReason, DomainEvent, ReturnCreated
from inventory.domain.orders import Credit, Order
from inventory.domain.outcome import Outcome
from inventory.domain.settings import TenantSettings
from inventory.domain.stock import Cause, CauseKind, Effect, StockKey, StockMovement, settle
from inventory.domain.values import ZERO, PennylaneId, TenantId, require_aware, require_quantity


class ReturnStatus(StrEnum):
    DRAFT = "draft"  # the credit note is still a draft: no stock effect
    OPEN = "open"
    WITHDRAWN = "withdrawn"  # the credit note was deleted in Pennylane


def returned_quantities(lines: tuple[SourceLine, ...]) -> dict[UUID, Decimal]:
    totals: dict[UUID, Decimal] = {}
    for line in lines:
        totals[line.product_id] = totals.get(line.product_id, ZERO) + abs(line.quantity)
    return totals


@dataclass
class Return:
    return_id: UUID
    tenant_id: TenantId
    credit_note_id: PennylaneId
    status: ReturnStatus
    created_at: datetime
    customer_id: UUID | None = None
    order_id: UUID | None = None
    restock: bool | None = None
    location_id: UUID | None = None
    source: SourceDocument | None = None
    quantities: dict[UUID, Decimal] = field(default_factory=dict)
    edited_in_stockpit: bool = False
    applied: dict[StockKey, Effect] = field(default_factory=dict)
    settled_by_order: bool = False
    # As for orders: its credit note belongs to a Pennylane company the tenant left.
    pennylane_unlinked: bool = False

    @classmethod
    def for_credit_note(cls, version: DocumentVersion, at: datetime) -> Return:
        if not version.is_credit_note:
            raise DomainError("only a credit note makes a return")
        return cls(
            return_id=uuid4(),
            tenant_id=version.tenant_id,
            credit_note_id=version.pennylane_id,
            status=ReturnStatus.DRAFT,
            created_at=require_aware(at, "at"),
        )

    def target_effect(self) -> dict[StockKey, Effect]:
        if (
            self.settled_by_order
            or self.status is not ReturnStatus.OPEN
            or not self.restock
            or self.location_id is None
        ):
            return {}
        return {
            StockKey(product_id, self.location_id): Effect(real=quantity)
            for product_id, quantity in self.quantities.items()
            if quantity != ZERO
        }

    def apply_document(
        self,
        version: DocumentVersion,
        lines: tuple[SourceLine, ...],
        settings: TenantSettings,
        at: datetime,
        *,
        customer_id: UUID | None = None,
        order: Order | None = None,
        classes: LineClasses | None = None,
    ) -> Outcome:
        """Apply a credit note version by difference; stale versions change nothing.

        `order` is the order of the credited invoice, when known: it settles the return.
        """
        require_aware(at, "at")
        if version.tenant_id != self.tenant_id or version.pennylane_id != self.credit_note_id:
            raise DomainError("this version is not this return's credit note")
        if not version.is_credit_note:
            raise DomainError("only a credit note makes a return")
        previous = self.source
        if not supersedes(version, previous):
            return Outcome()
        if order is not None and self.order_id not in (None, order.order_id):
            order = None  # attached to another order already: that one settles it
        self._require_settling_order(order, attaching=True)
        self.source = SourceDocument.from_version(version, lines, classes)
        self.customer_id = self.customer_id or customer_id
        if order is not None:
            self.order_id = order.order_id
        outcome = Outcome()
        new_quantities = returned_quantities(lines)
        if not self.edited_in_stockpit:
            self.quantities = new_quantities
        elif not version.deleted and new_quantities != self.quantities:
            outcome.events.append(
                Conflict(
                    self.tenant_id,
                    ConflictReason.RETURN_EDITED_IN_STOCKPIT,
                    f"{version.reference} changed in Pennylane; the quantities edited in "
                    "Stockpit are kept",
                    "return",
                    self.return_id,
                )
            )
        outcome.events.extend(self._refresh_status(settings))
        named = previous if version.deleted and previous is not None else self.source
        kind = CauseKind.REVERSAL if version.deleted else CauseKind.DOCUMENT
        outcome.movements = self._settle(
            order,
            named.causes(kind, self.return_id, version),
            named.causes(kind, order.order_id, version) if order is not None else None,
        )
        if order is not None and self.status is ReturnStatus.OPEN:
            outcome.events.extend(self._excess_reported(order))
        return outcome

    def _excess_reported(self, order: Order) -> list[DomainEvent]:
        """Rule 11: what a credit note credits beyond what its order still has to settle moves
        no stock; say so (after a cancel in Stockpit, that is the whole credit)."""
        settlement = order.settlement()
        released = settlement.released_by.get(self.return_id, {})
        goods = settlement.goods.get(self.return_id, {})
        events: list[DomainEvent] = []
        for product_id, quantity in self.quantities.items():
            settled = released.get(product_id, ZERO) + goods.get(product_id, ZERO)
            if quantity > settled:
                events.append(
                    Conflict(
                        self.tenant_id,
                        ConflictReason.CREDIT_EXCEEDS_ORDER,
                        f"credit note {self.credit_note_id} credits {quantity} but its order "
                        f"({order.status.value}) had {settled} left to settle; "
                        f"{quantity - settled} move no stock",
                        "return",
                        self.return_id,
                        product_id,
                    )
                )
        return events

    def credit(self) -> Credit:
        """What the order settles for this return (nothing while it does not count)."""
        counting = self.status is ReturnStatus.OPEN
        return Credit(
            self.return_id,
            document_reference(DocumentKind.CREDIT_NOTE, self.credit_note_id),
            dict(self.quantities) if counting else {},
            bool(self.restock),
            self.location_id,
        )

    def _require_settling_order(self, order: Order | None, *, attaching: bool = False) -> None:
        """Checked before anything changes: a refused command leaves the return as it was.
        Only a credit note version (`attaching`) attaches a return to its order."""
        attaches = attaching and self.order_id is None
        if order is not None and order.order_id != self.order_id and not attaches:
            raise DomainError("a return is settled only by the order of its invoice")
        if order is None and self.settled_by_order:
            raise DomainError("this return is settled by its order: pass the order")

    def _settle(
        self,
        order: Order | None,
        cause_for: Callable[[StockKey], Cause],
        order_cause_for: Callable[[StockKey], Cause] | None,
    ) -> list[StockMovement]:
        """Post the difference: by the order when it settles this return, else by itself.

        A return that had an effect of its own before its order was known hands it over: its
        own effect is reversed and the order posts the settled one."""
        if order is not None:
            self.settled_by_order = True
        movements = settle(self.applied, self.target_effect(), cause_for)
        if order is not None:
            assert order_cause_for is not None
            movements.extend(order.settle_credit(self.credit(), order_cause_for).movements)
        return movements

    def _refresh_status(self, settings: TenantSettings) -> list[DomainEvent]:
        assert self.source is not None
        if self.source.counts:
            self.status = ReturnStatus.OPEN
            if self.restock is None:
                self.restock = settings.restock_on_credit_note
                self.location_id = settings.default_location_id
                return [
                    ReturnCreated(
                        self.tenant_id,
                        self.return_id,
                        self.credit_note_id,
                        self.restock,
                        self.location_id,
                        self.order_id,
                    )
                ]
            return []
        never_counted = self.restock is None
        self.status = (
            ReturnStatus.DRAFT
            if never_counted and not self.source.deleted
            else ReturnStatus.WITHDRAWN
        )
        return []

    def edit(
        self,
        at: datetime,
        *,
        quantities: Mapping[UUID, Decimal] | None = None,
        restock: bool | None = None,
        order: Order | None = None,
    ) -> Outcome:
        """Edit the returned quantities (0 removes a product) and/or whether it restocks.

        A return settled by its order needs that order (`order`): it posts the effect."""
        require_aware(at, "at")
        if self.status is not ReturnStatus.OPEN:
            raise DomainError(f"only an open return can be edited; this one is {self.status}")
        self._require_settling_order(order)
        if quantities is not None:
            for quantity in quantities.values():
                if require_quantity(quantity, "returned quantity") < ZERO:
                    raise DomainError("a returned quantity cannot be negative")
            self.quantities = {
                product_id: quantity
                for product_id, quantity in quantities.items()
                if quantity != ZERO
            }
            self.edited_in_stockpit = True
        if restock is not None:
            self.restock = restock
        return Outcome(
            movements=self._settle(
                order,
                lambda _key: Cause(CauseKind.RETURN_EDIT, self.return_id, str(self.return_id)),
                (lambda _key: Cause(CauseKind.RETURN_EDIT, order.order_id, str(self.return_id)))
                if order is not None
                else None,
            )
        )

    def restock_now(self, at: datetime, *, order: Order | None = None) -> Outcome:
        """The "restock" action on a return imported without restock; no-op if it restocks."""
        return self.edit(at, restock=True, order=order)
