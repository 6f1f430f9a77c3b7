"""The tenant's sync report: problems in words a shop owner can act on.

Problems are kept as inventory emitted them (kind, reason, subject, product, location and the
reference of what caused them); the report adds what a person recognises — the Pennylane
document's number and date, the product's name and SKU, the location's name — and a short hint
per kind saying what the user can do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from inventory.domain.documents import DocumentKind, SourceDocument

# Problems inventory reports about a tenant's sync, by kind.
NEGATIVE_STOCK = "negative_stock"
CONFLICT = "conflict"
UNKNOWN_REFERENCE = "unknown_reference"
LIKELY_DUPLICATE = "likely_duplicate"
WRITE_FAILED = "write_failed"
TOKEN_REJECTED = "token_rejected"  # noqa: S105 - a problem kind, not a secret
REJECTED_INPUT = "rejected_input"

HINTS: dict[str, str] = {
    NEGATIVE_STOCK: (
        "More was sold than was counted: count this product at this location and import the "
        "count (stockpit count), or check the document's quantities in Pennylane."
    ),
    CONFLICT: (
        "Stockpit and Pennylane disagree on this order: check the document in Pennylane and the "
        "order's deliveries in Stockpit, and correct the one that is wrong."
    ),
    UNKNOWN_REFERENCE: (
        "A document names a record Stockpit does not have: check that it exists in Pennylane; "
        "the next sync imports it."
    ),
    LIKELY_DUPLICATE: (
        "This product looks like one you already have (same SKU or name): merge it into the "
        "original if they are the same product."
    ),
    WRITE_FAILED: (
        "Pennylane refused a change made in Stockpit: correct the record as the reason says, "
        "then send it again."
    ),
    TOKEN_REJECTED: (
        "Pennylane refused the API token (revoked or expired): nothing is read from or written "
        "to Pennylane for this tenant until you create a new token in Pennylane and reconnect "
        "with it (stockpit connect TENANT --token-file FILE); the sync then resumes where it "
        "stopped."
    ),
    REJECTED_INPUT: "A message could not be applied: see the reason, then ask support.",
}
DEFAULT_HINT = "See the reason; acknowledge the problem once it is dealt with."

DOCUMENT_KIND_WORDS = {
    "invoice": "invoice",
    "credit_note": "credit note",
    "purchase_order": "purchase order",
}


def hint_for(kind: str) -> str:
    return HINTS.get(kind, DEFAULT_HINT)


@dataclass(frozen=True)
class DocumentLabel:
    """What a user knows a Pennylane document by."""

    reference: str  # "invoice:123"
    number: str | None
    issued_on: date | None

    @property
    def kind(self) -> str:
        return self.reference.partition(":")[0]

    @property
    def pennylane_id(self) -> str:
        return self.reference.partition(":")[2]

    def describe(self) -> str:
        """ "invoice F-2026-0042 of 2026-11-02", or the Pennylane id when it has no number."""
        words = DOCUMENT_KIND_WORDS.get(self.kind, self.kind)
        name = self.number or f"#{self.pennylane_id} (Pennylane id)"
        when = f" of {self.issued_on.isoformat()}" if self.issued_on else ""
        return f"{words} {name}{when}"


def is_document_reference(reference: str | None) -> bool:
    return reference is not None and reference.partition(":")[0] in DOCUMENT_KIND_WORDS


@dataclass(frozen=True)
class ProblemRecord:
    """A problem as kept: what inventory knew when it emitted it."""

    problem_id: int
    kind: str
    reported_at: datetime
    reason: str
    subject_kind: str
    subject_id: str
    product_id: str | None
    location_id: str | None
    document_reference: str | None
    acknowledged_at: datetime | None
    occurrences: int = 1


@dataclass(frozen=True)
class ProductLabel:
    name: str
    sku: str | None


@dataclass(frozen=True)
class ProblemView:
    """One line of the report."""

    problem_id: int
    kind: str
    reported_at: datetime
    reason: str
    hint: str
    subject_kind: str
    subject_id: str
    product_id: str | None
    product_name: str | None
    sku: str | None
    location_id: str | None
    location_name: str | None
    document: DocumentLabel | None
    acknowledged_at: datetime | None
    occurrences: int = 1

    @property
    def summary(self) -> str:
        """One sentence: what, on which product and where, because of which document."""
        parts = [self.kind.replace("_", " ")]
        if self.product_name:
            parts.append(f"{self.product_name}" + (f" ({self.sku})" if self.sku else ""))
        if self.location_name:
            parts.append(f"at {self.location_name}")
        if self.document is not None:
            parts.append(f"after {self.document.describe()}")
        return " ".join(parts)


def problem_view(
    record: ProblemRecord,
    *,
    product: ProductLabel | None,
    location_name: str | None,
    document: DocumentLabel | None,
) -> ProblemView:
    return ProblemView(
        problem_id=record.problem_id,
        kind=record.kind,
        reported_at=record.reported_at,
        reason=record.reason,
        hint=hint_for(record.kind),
        subject_kind=record.subject_kind,
        subject_id=record.subject_id,
        product_id=record.product_id,
        product_name=product.name if product else None,
        sku=product.sku if product else None,
        location_id=record.location_id,
        location_name=location_name,
        document=document,
        acknowledged_at=record.acknowledged_at,
        occurrences=record.occurrences,
    )


def token_rejected_reason(error: str | None) -> str:
    return "Pennylane refused the token" + (f": {error}" if error else "")


def delivery_note_number(delivery_note_id: UUID) -> str:
    """The number a person reads and says: "BL-" (bon de livraison) and the id's first digits."""
    return f"BL-{delivery_note_id.hex[:8].upper()}"


def receipt_number(receipt_id: UUID) -> str:
    """ "BR-" (bon de réception) and the id's first digits."""
    return f"BR-{receipt_id.hex[:8].upper()}"


def source_label(source: SourceDocument) -> DocumentLabel:
    return DocumentLabel(source.reference, source.number, source.issued_on)


def primary_source(sources: Iterable[SourceDocument]) -> SourceDocument | None:
    """The document a person names an order by: its invoice, else its purchase order."""
    ordered = sorted(sources, key=lambda s: (s.kind is not DocumentKind.INVOICE, s.updated_at))
    return ordered[0] if ordered else None
