"""Pennylane documents as the poller reads them: one event per document version."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stockpit_contracts.payloads.base import (
    Money,
    Payload,
    PennylaneId,
    Quantity,
    ShortText,
    register,
)
from stockpit_contracts.topics import PENNYLANE_DOCUMENTS

SERVICE_ACCOUNT_PREFIX = "706"


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    PURCHASE_ORDER = "purchase_order"


class ProductRef(BaseModel):
    """The product a line names, with what inventory needs to create it when unknown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pennylane_id: PennylaneId
    label: ShortText
    reference: ShortText | None = None
    ledger_account_number: str | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=50)

    @property
    def is_service(self) -> bool:
        """Products booked on a 706 account ("Prestations de services") are services."""
        return (self.ledger_account_number or "").startswith(SERVICE_ACCOUNT_PREFIX)


class CustomerRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pennylane_id: PennylaneId
    name: ShortText
    kind: Literal["company", "individual"] | None = None
    emails: tuple[str, ...] = ()


class DocumentLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pennylane_line_id: PennylaneId
    label: ShortText
    quantity: Quantity
    unit: str | None = Field(default=None, max_length=50)
    product: ProductRef | None = None
    amount: Money | None = None


@register
class DocumentVersionRead(Payload):
    """A version of a customer invoice, credit note or purchase order, with all its lines.

    `updated_at` orders versions: inventory applies a version only when it is newer than the one it
    already applied. Drafts are published too, marked as such; inventory decides what they move.
    """

    EVENT_TYPE = "pennylane.document.version_read"
    TOPIC = PENNYLANE_DOCUMENTS

    kind: DocumentKind
    pennylane_id: PennylaneId
    number: ShortText | None = None
    draft: bool
    status: str | None = Field(default=None, max_length=50)
    issued_on: date | None = None
    updated_at: AwareDatetime
    customer: CustomerRef | None = None
    quote_id: PennylaneId | None = None
    credited_invoice_id: PennylaneId | None = None
    currency: str = Field(default="EUR", max_length=3)
    lines: tuple[DocumentLine, ...] = Field(default=(), max_length=10_000)


@register
class DocumentDeleted(Payload):
    """Pennylane deleted the document (a draft, or a purchase order): its effect is reversed."""

    EVENT_TYPE = "pennylane.document.deleted"
    TOPIC = PENNYLANE_DOCUMENTS

    kind: DocumentKind
    pennylane_id: PennylaneId
    deleted_at: AwareDatetime
