"""Orders and their delivery notes: the stock table's sales rows, rules 1, 3, 8.

An order keeps the net stock effect it has posted (`applied`, per product × location, always
equal to the sum of its ledger entries) and, after every change, posts the difference to the
effect it should have (`target_effect`):

* mode DEDUCT_ON_ORDER ("delivery notes update real stock" off): real −= max(ordered, delivered)
  at the order's location; delivery notes are recorded only.
* mode RESERVE_UNTIL_DELIVERY (on): reserved += max(ordered − delivered, 0) at the order's
  location (0 once archived); real −= delivered at each delivery note's location.
* cancelled: no effect at all, delivery notes included ("every stock effect it still has is
  reversed": the order's net ledger sum returns to zero).

Credit notes settle the order first (rules 10, 11). Each return of a credited invoice is
recorded on the order (`credits`, in the order they arrived) and the order computes, per
product, `settlement()`:

* released: under RESERVE_UNTIL_DELIVERY, the credited quantity first releases what is still
  undelivered (reserved −= released; such units can no longer be delivered). Under
  DEDUCT_ON_ORDER (and once archived or cancelled) nothing is left undelivered.
* returned goods: the rest of each credit, capped by what the order still has out of real stock
  (DEDUCT: max(ordered, delivered); RESERVE: delivered; cancelled: nothing), shared in arrival
  order, so two credit notes together never return more than the order took out.
* a return that restocks puts its returned goods back (real += goods at the return's location).

The restock is part of the order's own effect (ledger entries with the order as subject, naming
the credit note or the return), which is what makes a later cancel reverse exactly what is
still out and a credit after a cancel move nothing. These are state functions of the order, so
any order of events ends in the same effect.

Delivered units are never un-delivered: when Pennylane lowers an order below what was delivered,
the effect keeps the delivered units out of stock and a Conflict is reported (rule 3).

The mode and the location are fixed when the order is created (first counting document, or
creation in Stockpit) and never change afterwards (rule 1).

Rule 8, one sale from one quote. An invoice and a purchase order carrying the same Pennylane
`quote_id` attach to one order (the service layer finds it by quote id). The ordered quantity of
each product is

    max(Σ counting purchase orders, Σ counting invoices)

Why the maximum, per product: both documents describe the same units, so they never add up; the
purchase order is the customer's commitment and the invoice(s) the billing of it, so an invoice
that bills part of the sale (a deposit or a first instalment, often a product-less line) does not
release the rest, while an invoice that bills more than was ordered raises the order. The result
does not depend on which document arrives first. When one side is edited the order follows the
new maximum; when one side is deleted (a purchase order, or a draft invoice) the other side alone
remains. The cost of this choice: a final invoice that bills *less* than the purchase order keeps
the purchase order's quantity until that purchase order is edited (allowed in Pennylane, rule 9)
or the order is archived or cancelled in Stockpit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from stockpit_contracts.ids import new_uuid

from inventory.domain.catalog import Customer, Location, Product
from inventory.domain.documents import (
    DocumentKind,
    DocumentVersion,
    LineClasses,
    SourceDocument,
    SourceLine,
)
from inventory.domain.documents import supersedes as version_supersedes
from inventory.domain.errors import DomainError
from inventory.domain.events import Conflict, ConflictReason, DomainEvent, OrderCreated
from inventory.domain.outcome import Outcome
from inventory.domain.settings import StockMode, TenantSettings
from inventory.domain.stock import (
    NO_EFFECT,
    Cause,
    CauseKind,
    Effect,
    StockKey,
    StockMovement,
    id_order,
    settle,
)
from inventory.domain.values import ZERO, PennylaneId, TenantId, require_aware, require_positive


class OrderStatus(StrEnum):
    DRAFT = "draft"  # only draft documents seen: not an order for users yet, no stock effect
    OPEN = "open"
    WITHDRAWN = "withdrawn"  # no counting document left (all deleted in Pennylane)
    ARCHIVED = "archived"
    CANCELLED = "cancelled"


@dataclass
class DeliveryNote:
    delivery_note_id: UUID
    location_id: UUID
    lines: dict[UUID, Decimal]
    delivered_at: datetime


@dataclass
class Credit:
    """A return of one of the order's invoices, as the order settles it (rules 10, 11)."""

    return_id: UUID
    reference: str  # the credit note, "credit_note:<id>"
    quantities: dict[UUID, Decimal] = field(default_factory=dict)  # empty: not counting
    restock: bool = False
    location_id: UUID | None = None


@dataclass(frozen=True)
class Settlement:
    """Per product: reservation released by credits; per return and product: the reservation
    it released and its returned goods."""

    released: dict[UUID, Decimal]
    goods: dict[UUID, dict[UUID, Decimal]]
    released_by: dict[UUID, dict[UUID, Decimal]] = field(default_factory=dict)


@dataclass
class Order:
    order_id: UUID
    tenant_id: TenantId
    from_pennylane: bool
    status: OrderStatus
    created_at: datetime
    customer_id: UUID | None = None
    quote_id: PennylaneId | None = None
    mode: StockMode | None = None
    location_id: UUID | None = None
    stockpit_lines: dict[UUID, Decimal] = field(default_factory=dict)
    sources: dict[str, SourceDocument] = field(default_factory=dict)
    deliveries: list[DeliveryNote] = field(default_factory=list)
    applied: dict[StockKey, Effect] = field(default_factory=dict)
    credits: dict[UUID, Credit] = field(default_factory=dict)
    # The tenant was re-pointed to another Pennylane company: the documents this order came
    # from belong to the old one, so no document of the new company may ever find it.
    pennylane_unlinked: bool = False

    # -- creation -------------------------------------------------------------------------

    @classmethod
    def for_document(cls, version: DocumentVersion, at: datetime) -> Order:
        """An empty order for a document not seen before; `apply_document` fills it."""
        if version.is_credit_note:
            raise DomainError("a credit note makes a return, not an order")
        return cls(
            order_id=new_uuid(),
            tenant_id=version.tenant_id,
            from_pennylane=True,
            status=OrderStatus.DRAFT,
            created_at=require_aware(at, "at"),
            quote_id=version.quote_id,
        )

    @classmethod
    def create_in_stockpit(
        cls,
        settings: TenantSettings,
        lines: Sequence[tuple[Product, Decimal]],
        at: datetime,
        *,
        customer: Customer | None = None,
        location: Location | None = None,
    ) -> tuple[Order, Outcome]:
        """An order typed in Stockpit; its customer is created in Pennylane if not yet there."""
        require_aware(at, "at")
        if not lines:
            raise DomainError("an order needs at least one line")
        quantities: dict[UUID, Decimal] = {}
        for product, quantity in lines:
            require_positive(quantity, "ordered quantity")
            if product.tenant_id != settings.tenant_id:
                raise DomainError("a product of another tenant cannot be ordered")
            if product.deleted:
                raise DomainError(f"product {product.name!r} is deleted")
            if product.is_service:
                raise DomainError(f"{product.name!r} is a service: services carry no stock")
            quantities[product.product_id] = quantities.get(product.product_id, ZERO) + quantity
        if location is not None and (
            location.tenant_id != settings.tenant_id or not location.active
        ):
            raise DomainError("the order's location must be an active location of the tenant")
        if customer is not None and customer.tenant_id != settings.tenant_id:
            raise DomainError("a customer of another tenant cannot be used")
        order = cls(
            order_id=new_uuid(),
            tenant_id=settings.tenant_id,
            from_pennylane=False,
            status=OrderStatus.OPEN,
            created_at=at,
            customer_id=customer.customer_id if customer else None,
            mode=settings.stock_mode,
            location_id=location.location_id if location else settings.default_location_id,
            stockpit_lines=quantities,
        )
        outcome = Outcome(events=[order._created_event()])
        if customer is not None:
            outcome.events.extend(customer.request_pennylane_creation(at))
        outcome.movements = order._settle(
            lambda _key: Cause(CauseKind.STOCKPIT_ORDER, order.order_id, str(order.order_id))
        )
        return order, outcome

    def _created_event(self) -> OrderCreated:
        assert self.mode is not None
        assert self.location_id is not None
        return OrderCreated(
            tenant_id=self.tenant_id,
            order_id=self.order_id,
            from_pennylane=self.from_pennylane,
            mode=self.mode.value,
            location_id=self.location_id,
            customer_id=self.customer_id,
        )

    # -- what the order is ----------------------------------------------------------------

    def holds(self, version: DocumentVersion) -> bool:
        return version.reference in self.sources

    def ordered_quantities(self) -> dict[UUID, Decimal]:
        """Quantity sold per product (rule 8: max of purchase orders and invoices, see above)."""
        if not self.from_pennylane:
            return dict(self.stockpit_lines)
        by_kind: dict[DocumentKind, dict[UUID, Decimal]] = {
            DocumentKind.INVOICE: {},
            DocumentKind.PURCHASE_ORDER: {},
        }
        for source in self.sources.values():
            if not source.counts:
                continue
            totals = by_kind[source.kind]
            for product_id, quantity in source.quantities().items():
                totals[product_id] = totals.get(product_id, ZERO) + quantity
        invoiced = by_kind[DocumentKind.INVOICE]
        in_orders = by_kind[DocumentKind.PURCHASE_ORDER]
        return {
            product_id: max(invoiced.get(product_id, ZERO), in_orders.get(product_id, ZERO), ZERO)
            for product_id in sorted(set(invoiced) | set(in_orders), key=id_order)
        }

    def delivered_quantities(self) -> dict[UUID, Decimal]:
        delivered: dict[UUID, Decimal] = {}
        for note in self.deliveries:
            for product_id, quantity in note.lines.items():
                delivered[product_id] = delivered.get(product_id, ZERO) + quantity
        return delivered

    def _undelivered(
        self, ordered: Mapping[UUID, Decimal], delivered: Mapping[UUID, Decimal]
    ) -> dict[UUID, Decimal]:
        """Units still to deliver per product, before credits: only an open or withdrawn order
        under RESERVE_UNTIL_DELIVERY has any (DEDUCT counts invoiced units as delivered)."""
        if self.mode is not StockMode.RESERVE_UNTIL_DELIVERY or self.status in (
            OrderStatus.ARCHIVED,
            OrderStatus.CANCELLED,
        ):
            return {}
        return {
            product_id: quantity - delivered.get(product_id, ZERO)
            for product_id, quantity in ordered.items()
            if quantity > delivered.get(product_id, ZERO)
        }

    def _out_of_stock(
        self, ordered: Mapping[UUID, Decimal], delivered: Mapping[UUID, Decimal]
    ) -> dict[UUID, Decimal]:
        """Units this order took out of real stock per product (before any restock)."""
        if self.status is OrderStatus.CANCELLED or self.mode is None:
            return {}
        if self.mode is StockMode.DEDUCT_ON_ORDER:
            products = set(ordered) | set(delivered)
            return {p: max(ordered.get(p, ZERO), delivered.get(p, ZERO), ZERO) for p in products}
        return dict(delivered)

    def settlement(self) -> Settlement:
        """How the credits settle this order (module docstring, rules 10 and 11)."""
        ordered = self.ordered_quantities()
        delivered = self.delivered_quantities()
        undelivered = self._undelivered(ordered, delivered)
        out = self._out_of_stock(ordered, delivered)
        released: dict[UUID, Decimal] = {}
        goods: dict[UUID, dict[UUID, Decimal]] = {}
        released_by: dict[UUID, dict[UUID, Decimal]] = {}
        for credit in self.credits.values():
            returned: dict[UUID, Decimal] = {}
            freed: dict[UUID, Decimal] = {}
            for product_id in sorted(credit.quantities, key=id_order):
                quantity = credit.quantities[product_id]
                release = min(quantity, undelivered.get(product_id, ZERO))
                if release > ZERO:
                    undelivered[product_id] -= release
                    released[product_id] = released.get(product_id, ZERO) + release
                    freed[product_id] = release
                back = min(quantity - release, out.get(product_id, ZERO))
                if back > ZERO:
                    out[product_id] -= back
                    returned[product_id] = back
            goods[credit.return_id] = returned
            released_by[credit.return_id] = freed
        return Settlement(released, goods, released_by)

    def remaining_quantities(self) -> dict[UUID, Decimal]:
        """Units still to deliver per product: ordered − delivered − released by credits."""
        ordered = self.ordered_quantities()
        delivered = self.delivered_quantities()
        released = self.settlement().released
        return {
            product_id: max(
                quantity - delivered.get(product_id, ZERO) - released.get(product_id, ZERO), ZERO
            )
            for product_id, quantity in ordered.items()
        }

    def target_effect(
        self, ordered: Mapping[UUID, Decimal] | None = None
    ) -> dict[StockKey, Effect]:
        """The net stock effect this order should have now (see the module docstring);
        `ordered` is `ordered_quantities()` when the caller has it already."""
        if self.mode is None or self.location_id is None:
            return {}
        if self.status is OrderStatus.CANCELLED:
            return {}
        if ordered is None:
            ordered = self.ordered_quantities()
        delivered = self.delivered_quantities()
        settlement = self.settlement() if self.credits else Settlement({}, {})
        target: dict[StockKey, Effect] = {}

        def add(key: StockKey, effect: Effect) -> None:
            target[key] = target.get(key, NO_EFFECT) + effect

        products = sorted(set(ordered) | set(delivered), key=id_order)
        if self.mode is StockMode.DEDUCT_ON_ORDER:
            for product_id in products:
                out = max(ordered.get(product_id, ZERO), delivered.get(product_id, ZERO))
                add(StockKey(product_id, self.location_id), Effect(real=-out))
        else:
            for note in self.deliveries:
                for product_id, quantity in note.lines.items():
                    add(StockKey(product_id, note.location_id), Effect(real=-quantity))
            if self.status is not OrderStatus.ARCHIVED:
                for product_id in products:
                    remaining = (
                        ordered.get(product_id, ZERO)
                        - delivered.get(product_id, ZERO)
                        - settlement.released.get(product_id, ZERO)
                    )
                    if remaining > ZERO:
                        add(StockKey(product_id, self.location_id), Effect(reserved=remaining))
        for credit in self.credits.values():
            if not credit.restock or credit.location_id is None:
                continue
            for product_id, quantity in settlement.goods.get(credit.return_id, {}).items():
                add(StockKey(product_id, credit.location_id), Effect(real=quantity))
        return {key: effect for key, effect in target.items() if not effect.is_zero}

    def settle_credit(self, credit: Credit, cause_for: Callable[[StockKey], Cause]) -> Outcome:
        """Record (or update) a return of this order's invoices and post the difference."""
        if not self.from_pennylane:
            raise DomainError("only an order from Pennylane invoices takes credit notes")
        self.credits[credit.return_id] = credit
        return Outcome(movements=self._settle(cause_for))

    def _settle(
        self,
        cause_for: Callable[[StockKey], Cause],
        ordered: Mapping[UUID, Decimal] | None = None,
    ) -> list[StockMovement]:
        return settle(self.applied, self.target_effect(ordered), cause_for)

    # -- Pennylane documents --------------------------------------------------------------

    def apply_document(
        self,
        version: DocumentVersion,
        lines: tuple[SourceLine, ...],
        settings: TenantSettings,
        at: datetime,
        *,
        customer_id: UUID | None = None,
        classes: LineClasses | None = None,
    ) -> Outcome:
        """Apply a version of an invoice or purchase order by difference (rules 2, 3, 7, 8).

        `lines` are the version's stock-moving lines resolved to products (see
        `pennylane_import`). A version that does not supersede the stored one changes nothing.
        """
        require_aware(at, "at")
        if not self.from_pennylane or version.tenant_id != self.tenant_id:
            raise DomainError("this order does not take Pennylane documents of this tenant")
        if version.is_credit_note:
            raise DomainError("a credit note makes a return, not an order")
        foreign_quote = version.quote_id is None or version.quote_id != self.quote_id
        if self.sources and not self.holds(version) and foreign_quote:
            raise DomainError("a document attaches only to its own order or to its quote's order")
        previous = self.sources.get(version.reference)
        if not version_supersedes(version, previous):
            return Outcome()
        ordered_before = self.ordered_quantities()
        source = SourceDocument.from_version(version, lines, classes)
        self.sources[version.reference] = source
        if self.customer_id is None:
            self.customer_id = customer_id
        outcome = Outcome(events=self._refresh_status(settings))
        if self.status in (OrderStatus.ARCHIVED, OrderStatus.CANCELLED):
            outcome.events.append(
                self._conflict(
                    ConflictReason.ORDER_CLOSED_IN_STOCKPIT,
                    f"{version.reference} changed in Pennylane after the order was "
                    f"{self.status.value} in Stockpit",
                )
            )
        # A deletion names the lines it reverses: those of the version it replaces.
        named = previous if version.deleted and previous is not None else source
        kind = CauseKind.REVERSAL if version.deleted else CauseKind.DOCUMENT
        cause_for = named.causes(kind, self.order_id, version)

        ordered = self.ordered_quantities()
        outcome.movements = self._settle(cause_for, ordered)
        outcome.events.extend(self._check_against_deliveries(ordered_before, ordered))
        if source.counts:
            for product_id, quantity in source.quantities().items():
                if quantity < ZERO:
                    outcome.events.append(
                        self._conflict(
                            ConflictReason.NEGATIVE_DOCUMENT_QUANTITY,
                            f"{version.reference} sells a negative quantity ({quantity}); "
                            "counted as zero",
                            product_id,
                        )
                    )
        return outcome

    def _refresh_status(self, settings: TenantSettings) -> list[DomainEvent]:
        """Status from the documents; an order is created when its first document counts."""
        if self.status in (OrderStatus.ARCHIVED, OrderStatus.CANCELLED):
            return []
        if any(source.counts for source in self.sources.values()):
            self.status = OrderStatus.OPEN
            if self.mode is None:
                # Rule 1: the mode (and location) in force now stay with the order for good.
                self.mode = settings.stock_mode
                self.location_id = settings.default_location_id
                return [self._created_event()]
            return []
        never_counted = self.mode is None
        all_deleted = all(source.deleted for source in self.sources.values())
        self.status = (
            OrderStatus.DRAFT if never_counted and not all_deleted else (OrderStatus.WITHDRAWN)
        )
        return []

    def _check_against_deliveries(
        self, ordered_before: Mapping[UUID, Decimal], ordered: Mapping[UUID, Decimal]
    ) -> list[DomainEvent]:
        """Rule 3: a Pennylane change below the delivered quantity is a conflict, not an undo."""
        delivered = self.delivered_quantities()
        events: list[DomainEvent] = []
        for product_id in sorted(set(ordered) | set(ordered_before), key=id_order):
            now_ordered = ordered.get(product_id, ZERO)
            if now_ordered == ordered_before.get(product_id, ZERO):
                continue
            if delivered.get(product_id, ZERO) > now_ordered:
                events.append(
                    self._conflict(
                        ConflictReason.DELIVERED_EXCEEDS_ORDER,
                        f"Pennylane now orders {now_ordered} but "
                        f"{delivered[product_id]} were already delivered; delivered units stay "
                        "out of stock",
                        product_id,
                    )
                )
        return events

    def _conflict(
        self, reason: ConflictReason, detail: str, product_id: UUID | None = None
    ) -> Conflict:
        return Conflict(self.tenant_id, reason, detail, "order", self.order_id, product_id)

    # -- Stockpit actions -----------------------------------------------------------------

    def deliver(
        self,
        lines: Mapping[UUID, Decimal],
        at: datetime,
        *,
        location: Location | None = None,
    ) -> tuple[DeliveryNote, Outcome]:
        """Record a delivery note, partial or complete. Delivering more than remains is refused.

        The note leaves from `location` (default: the order's location).
        """
        require_aware(at, "at")
        if self.status is not OrderStatus.OPEN:
            raise DomainError(f"only an open order can be delivered; this one is {self.status}")
        if not lines:
            raise DomainError("a delivery note needs at least one line")
        if location is not None and (location.tenant_id != self.tenant_id or not location.active):
            raise DomainError("the delivery location must be an active location of the tenant")
        ordered = self.ordered_quantities()
        remaining_by_product = self.remaining_quantities()
        for product_id, quantity in lines.items():
            require_positive(quantity, "delivered quantity")
            remaining = remaining_by_product.get(product_id, ZERO)
            if product_id not in ordered:
                raise DomainError(f"product {product_id} is not on this order")
            if quantity > remaining:
                raise DomainError(
                    f"cannot deliver {quantity} of product {product_id}: {remaining} remain"
                )
        assert self.location_id is not None
        note = DeliveryNote(
            new_uuid(),
            location.location_id if location else self.location_id,
            dict(lines),
            at,
        )
        self.deliveries.append(note)
        movements = self._settle(
            lambda _key: Cause(CauseKind.DELIVERY_NOTE, self.order_id, str(note.delivery_note_id))
        )
        return note, Outcome(movements=movements)

    def archive(self, at: datetime) -> Outcome:
        """Done with this order: its remaining reservation is released."""
        require_aware(at, "at")
        if self.status not in (OrderStatus.OPEN, OrderStatus.WITHDRAWN):
            raise DomainError(f"only an open order can be archived; this one is {self.status}")
        self.status = OrderStatus.ARCHIVED
        return Outcome(
            movements=self._settle(
                lambda _key: Cause(CauseKind.ARCHIVE, self.order_id, str(self.order_id))
            )
        )

    def cancel(self, at: datetime) -> Outcome:
        """Every stock effect the order still has is reversed, its delivery notes' included."""
        require_aware(at, "at")
        if self.status is OrderStatus.CANCELLED:
            raise DomainError("the order is already cancelled")
        self.status = OrderStatus.CANCELLED
        return Outcome(
            movements=self._settle(
                lambda _key: Cause(CauseKind.CANCEL, self.order_id, str(self.order_id))
            )
        )
