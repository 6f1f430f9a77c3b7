"""Pennylane document versions and the record of the version applied (rules 2, 3, 7).

Version order. A version replaces the stored one when its `(updated_at, fingerprint)` is
greater: the fingerprint (a hash of the content) only breaks ties between two different contents
that carry the same `updated_at`, so every arrival order converges on the same version. A
deletion is final: it replaces any version, and nothing replaces it (Pennylane never revives a
deleted document and never reuses its id). Replaying, duplicating or reordering a document's
versions therefore always ends on the same stored version: the latest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from inventory.domain.catalog import PennylaneCustomer, PennylaneProduct
from inventory.domain.errors import DomainError
from inventory.domain.stock import Cause, CauseKind, StockKey
from inventory.domain.values import PennylaneId, TenantId, require_aware, require_quantity


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PURCHASE_ORDER = "purchase_order"


@dataclass(frozen=True)
class DocumentLine:
    """A line as Pennylane has it. `product` is None for a free-text line."""

    line_id: PennylaneId
    quantity: Decimal
    product: PennylaneProduct | None = None
    label: str = ""

    def __post_init__(self) -> None:
        require_quantity(self.quantity, "line quantity")

    @property
    def moves_stock(self) -> bool:
        """Rule 4: service lines and lines without a product never move stock."""
        return self.product is not None and not self.product.is_service


@dataclass(frozen=True)
class DocumentVersion:
    """One version of an invoice, credit note or purchase order, as the poller read it.

    A deletion is a version too (`deleted=True`, no lines). `updated_at` is the version marker.
    """

    tenant_id: TenantId
    kind: DocumentKind
    pennylane_id: PennylaneId
    updated_at: datetime
    draft: bool = False
    deleted: bool = False
    lines: tuple[DocumentLine, ...] = ()
    customer: PennylaneCustomer | None = None
    quote_id: PennylaneId | None = None
    credited_invoice_id: PennylaneId | None = None
    number: str | None = None
    # Pennylane's status ("cancelled" for an invoice, "archived" for an archived purchase
    # order): kept for information only, it moves no stock (see the package docstring).
    status: str | None = None
    # The document's date as Pennylane shows it (not part of the fingerprint: shown only).
    issued_on: date | None = None

    def __post_init__(self) -> None:
        require_aware(self.updated_at, "document updated_at")
        if self.deleted and self.lines:
            raise DomainError("a deletion carries no lines")

    @classmethod
    def deletion(
        cls, tenant_id: TenantId, kind: DocumentKind, pennylane_id: PennylaneId, at: datetime
    ) -> DocumentVersion:
        return cls(tenant_id, kind, pennylane_id, at, deleted=True)

    @property
    def is_credit_note(self) -> bool:
        return self.kind is DocumentKind.CREDIT_NOTE

    @property
    def reference(self) -> str:
        return document_reference(self.kind, self.pennylane_id)

    @property
    def fingerprint(self) -> str:
        """A stable hash of everything that can differ between two versions."""
        parts = [
            self.kind.value,
            str(self.pennylane_id),
            f"draft={self.draft}",
            f"deleted={self.deleted}",
            f"quote={self.quote_id}",
            f"credited={self.credited_invoice_id}",
            f"number={self.number}",
            f"customer={self.customer.pennylane_id if self.customer else None}",
        ]
        if self.status is not None:
            parts.append(f"status={self.status}")
        # The product's account is left out on purpose (rule 12, module docstring).
        for line in sorted(self.lines, key=lambda line: line.line_id):
            product = line.product
            parts.append(
                f"line={line.line_id}:{line.quantity.normalize()}:"
                f"{product.pennylane_id if product else None}"
            )
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def document_reference(kind: DocumentKind, pennylane_id: PennylaneId) -> str:
    return f"{kind.value}:{pennylane_id}"


@dataclass(frozen=True)
class SourceLine:
    """A stock-moving line of an applied version, resolved to a Stockpit product."""

    line_id: PennylaneId
    product_id: UUID
    quantity: Decimal


@dataclass(frozen=True)
class LineClasses:
    """The products of a document taken as goods and as services (sorted Pennylane ids)."""

    goods: tuple[PennylaneId, ...] = ()
    services: tuple[PennylaneId, ...] = ()


@dataclass(frozen=True)
class SourceDocument:
    """The latest version of a Pennylane document applied to an order or return."""

    kind: DocumentKind
    pennylane_id: PennylaneId
    updated_at: datetime
    fingerprint: str
    draft: bool
    deleted: bool
    lines: tuple[SourceLine, ...]
    number: str | None = None
    # Rule 12: the Pennylane ids of the products this document took as goods / as services,
    # decided when each first appeared on it (module docstring).
    goods: tuple[PennylaneId, ...] = ()
    services: tuple[PennylaneId, ...] = ()
    status: str | None = None
    issued_on: date | None = None

    @classmethod
    def from_version(
        cls,
        version: DocumentVersion,
        lines: tuple[SourceLine, ...],
        classes: LineClasses | None = None,
    ) -> SourceDocument:
        classes = classes or LineClasses()
        return cls(
            kind=version.kind,
            pennylane_id=version.pennylane_id,
            updated_at=version.updated_at,
            fingerprint=version.fingerprint,
            draft=version.draft,
            deleted=version.deleted,
            lines=lines,
            number=version.number,
            goods=classes.goods,
            services=classes.services,
            status=version.status,
            issued_on=version.issued_on,
        )

    @property
    def reference(self) -> str:
        return document_reference(self.kind, self.pennylane_id)

    @property
    def counts(self) -> bool:
        """Rule 2 and 3: drafts and deleted documents move no stock."""
        return not self.draft and not self.deleted

    def quantities(self) -> dict[UUID, Decimal]:
        totals: dict[UUID, Decimal] = {}
        for line in self.lines:
            totals[line.product_id] = totals.get(line.product_id, Decimal(0)) + line.quantity
        return totals

    def causes(
        self, kind: CauseKind, subject_id: UUID, version: DocumentVersion
    ) -> Callable[[StockKey], Cause]:
        """The cause of each movement `version` makes, naming this document's lines of the
        moved product (the lines are grouped once: an invoice moves many products)."""
        line_ids: dict[UUID, list[str]] = {}
        for line in self.lines:
            line_ids.setdefault(line.product_id, []).append(str(line.line_id))
        at, reference = version.updated_at.isoformat(), version.reference

        def cause_for(key: StockKey) -> Cause:
            named = line_ids.get(key.product_id)
            return Cause(
                kind,
                subject_id,
                reference,
                version=at,
                lines=",".join(named) if named else None,
            )

        return cause_for


def supersedes(version: DocumentVersion, current: SourceDocument | None) -> bool:
    """Whether `version` replaces the stored one (see the module docstring)."""
    if current is None:
        return True
    if current.deleted:
        return False
    if version.deleted:
        return True
    return (version.updated_at, version.fingerprint) > (current.updated_at, current.fingerprint)
