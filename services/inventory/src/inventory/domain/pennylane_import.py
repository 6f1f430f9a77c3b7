"""Applying a Pennylane document version: the one entry point for invoices, purchase orders
and credit notes (rules 2, 3, 4, 7, 8 and "unknown products named on a document are created").

The service layer, per message and inside one transaction:

1. loads the settings; the order holding the document or, failing that, the order of its
   `quote_id` (rule 8) - or for a credit note its return, and the order of its credited invoice;
   the products named by `named_product_ids(version)`; the customer of `version.customer`;
2. calls `apply_pennylane_document`;
3. saves the order or return, the new products and customer, then loads the levels of
   `stock_keys(outcome.movements)` and calls `stock.post_movements`;
4. publishes the events.

Documents of one tenant must be applied one at a time (the Kafka key is the tenant), or two
documents of one quote could each create an order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from inventory.domain.catalog import Customer, Product
from inventory.domain.documents import (
    DocumentVersion,
    LineClasses,
    SourceDocument,
    SourceLine,
    supersedes,
)
from inventory.domain.errors import DomainError
from inventory.domain.events import CreatedBecause, DomainEvent, UnknownReference
from inventory.domain.orders import Order
from inventory.domain.outcome import Outcome
from inventory.domain.returns import Return
from inventory.domain.settings import TenantSettings
from inventory.domain.values import PennylaneId, require_aware


def named_product_ids(version: DocumentVersion) -> set[PennylaneId]:
    """The Pennylane ids of every product the version's lines name (to load them first)."""
    return {line.product.pennylane_id for line in version.lines if line.product is not None}


@dataclass
class ResolvedLines:
    lines: tuple[SourceLine, ...]
    classes: LineClasses = field(default_factory=LineClasses)
    new_products: list[Product] = field(default_factory=list)
    events: list[DomainEvent] = field(default_factory=list)


def resolve_lines(
    settings: TenantSettings,
    version: DocumentVersion,
    products: Mapping[PennylaneId, Product],
    previous: SourceDocument | None = None,
) -> ResolvedLines:
    """Stock-moving lines resolved to Stockpit products, creating the unknown ones.

    A product named on a document is always created, whatever "import products" says. A service
    named on a document is created only when "import services" is on: its line moves nothing
    either way (rule 4), and the spec imports services only on that setting.

    Rule 12: whether a product's lines are goods or a service is decided by the first applied
    version of the document that names it (`previous`, the stored record, keeps the decision);
    only a product new to the document is read from the line (its account when read).
    """
    resolved = ResolvedLines(lines=())
    known = dict(products)
    previous_goods = {line.product_id for line in previous.lines} if previous else set()
    lines: list[SourceLine] = []
    decided: dict[PennylaneId, bool] = {}
    if previous is not None:
        decided.update((pennylane_id, False) for pennylane_id in previous.goods)
        decided.update((pennylane_id, True) for pennylane_id in previous.services)
    for line in version.lines:
        reference = line.product
        if reference is None:
            continue
        pennylane_id = reference.pennylane_id
        product = known.get(pennylane_id)
        is_service = decided.get(pennylane_id)
        if is_service is None and product is not None and product.product_id in previous_goods:
            is_service = False  # a record stored before the decisions were kept
        if is_service is None:
            is_service = reference.is_service
        decided[pennylane_id] = is_service
        if product is None and (not is_service or settings.import_services):
            product, events = Product.from_pennylane(
                settings.tenant_id, reference, CreatedBecause.NAMED_ON_DOCUMENT
            )
            known[pennylane_id] = product
            resolved.new_products.append(product)
            resolved.events.extend(events)
        if product is None or is_service:
            continue
        if product.tenant_id != settings.tenant_id:
            raise DomainError("a product of another tenant cannot be named")
        lines.append(SourceLine(line.line_id, product.product_id, line.quantity))
    resolved.lines = tuple(lines)
    resolved.classes = LineClasses(
        tuple(sorted(p for p, is_service in decided.items() if not is_service)),
        tuple(sorted(p for p, is_service in decided.items() if is_service)),
    )
    return resolved


@dataclass
class DocumentApplication:
    """The result: the order or return to save, what was created, what to post and publish.

    `applied` is False when the version was stale or a duplicate: nothing changed at all.
    """

    applied: bool
    order: Order | None = None
    return_: Return | None = None
    new_products: list[Product] = field(default_factory=list)
    new_customer: Customer | None = None
    outcome: Outcome = field(default_factory=Outcome)


def apply_pennylane_document(
    settings: TenantSettings,
    version: DocumentVersion,
    at: datetime,
    *,
    products: Mapping[PennylaneId, Product],
    customer: Customer | None = None,
    order: Order | None = None,
    return_: Return | None = None,
    credited_order: Order | None = None,
) -> DocumentApplication:
    """Apply one version of an invoice, purchase order or credit note by difference.

    For an invoice or purchase order pass `order`: the order holding this document, else the
    order of its quote, else None (a new order is made). For a credit note pass `return_` (its
    return, or None) and `credited_order`: the order its return is settled by (`return_.order_id`)
    or else the order of the credited invoice, if known; that order is changed too (rule 10) and
    returned in `order`.
    """
    require_aware(at, "at")
    if version.tenant_id != settings.tenant_id:
        raise DomainError("the document belongs to another tenant")
    if customer is not None and (
        version.customer is None or customer.pennylane_id != version.customer.pennylane_id
    ):
        raise DomainError("the customer passed is not the document's customer")
    if version.is_credit_note:
        return _apply_credit_note(
            settings, version, at, products, customer, return_, credited_order
        )
    return _apply_sale(settings, version, at, products, customer, order)


def _customer_for(
    settings: TenantSettings, version: DocumentVersion, customer: Customer | None
) -> tuple[Customer | None, Customer | None, list[DomainEvent]]:
    """(the document's customer, the one created now if unknown, events)."""
    if customer is not None or version.customer is None:
        return customer, None, []
    created, events = Customer.from_pennylane(settings.tenant_id, version.customer)
    return created, created, events


def _apply_sale(
    settings: TenantSettings,
    version: DocumentVersion,
    at: datetime,
    products: Mapping[PennylaneId, Product],
    customer: Customer | None,
    order: Order | None,
) -> DocumentApplication:
    if order is None:
        order = Order.for_document(version, at)
    elif not supersedes(version, order.sources.get(version.reference)):
        return DocumentApplication(applied=False, order=order)
    resolved = resolve_lines(settings, version, products, order.sources.get(version.reference))
    customer, new_customer, customer_events = _customer_for(settings, version, customer)
    outcome = order.apply_document(
        version,
        resolved.lines,
        settings,
        at,
        customer_id=customer.customer_id if customer else None,
        classes=resolved.classes,
    )
    outcome.events[:0] = [*resolved.events, *customer_events]
    return DocumentApplication(True, order, None, resolved.new_products, new_customer, outcome)


def _apply_credit_note(
    settings: TenantSettings,
    version: DocumentVersion,
    at: datetime,
    products: Mapping[PennylaneId, Product],
    customer: Customer | None,
    return_: Return | None,
    credited_order: Order | None,
) -> DocumentApplication:
    if return_ is None:
        return_ = Return.for_credit_note(version, at)
    elif not supersedes(version, return_.source):
        return DocumentApplication(applied=False, return_=return_)
    resolved = resolve_lines(settings, version, products, return_.source)
    customer, new_customer, customer_events = _customer_for(settings, version, customer)
    outcome = return_.apply_document(
        version,
        resolved.lines,
        settings,
        at,
        customer_id=customer.customer_id if customer else None,
        order=credited_order,
        classes=resolved.classes,
    )
    outcome.events[:0] = [*resolved.events, *customer_events]
    if version.credited_invoice_id is not None and credited_order is None:
        outcome.events.append(
            UnknownReference(
                settings.tenant_id, "invoice", version.credited_invoice_id, version.reference
            )
        )
    settled_by = credited_order if return_.settled_by_order else None
    return DocumentApplication(
        True, settled_by, return_, resolved.new_products, new_customer, outcome
    )
