"""Writes inventory asks of Pennylane, and what came of them."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stockpit_contracts.payloads.base import (
    EntityId,
    Money,
    Payload,
    PennylaneId,
    Quantity,
    ShortText,
    register,
)
from stockpit_contracts.payloads.catalog import PostalAddress
from stockpit_contracts.topics import OUTBOUND_REQUESTS, OUTBOUND_RESULTS

EntityKind = Literal["product", "customer", "receipt"]


@register
class ProductChangeRequested(Payload):
    """A product's name or SKU changed in Stockpit (never an echo of a Pennylane change).

    `changed_at` is when the change was made in Stockpit; `pennylane_label` and
    `pennylane_reference` are the values Stockpit last saw in Pennylane, as of Pennylane's
    `pennylane_updated_at` (`pennylane_label` None: not known, and then `pennylane_reference`
    means nothing; `pennylane_updated_at` None: time not known). With them outbound tells which
    side changed a field last ("last change wins", PRODUCT.md rule 13).
    """

    EVENT_TYPE = "outbound.product.change_requested"
    TOPIC = OUTBOUND_REQUESTS

    product_id: EntityId
    pennylane_product_id: PennylaneId
    label: ShortText
    reference: ShortText | None = None
    changed_at: AwareDatetime
    pennylane_label: ShortText | None = None
    pennylane_reference: ShortText | None = None
    pennylane_updated_at: AwareDatetime | None = None


@register
class CustomerWriteRequested(Payload):
    """A customer created or changed in Stockpit; created in Pennylane when not yet linked.

    `pennylane_name` and `pennylane_emails` are the values Stockpit last saw in Pennylane, as of
    `pennylane_updated_at` (None: not known), as for products.
    """

    EVENT_TYPE = "outbound.customer.write_requested"
    TOPIC = OUTBOUND_REQUESTS

    customer_id: EntityId
    pennylane_customer_id: PennylaneId | None = None
    kind: Literal["company", "individual"]
    name: ShortText
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    emails: tuple[str, ...] = ()
    billing_address: PostalAddress | None = None
    changed_at: AwareDatetime
    pennylane_name: ShortText | None = None
    pennylane_emails: tuple[str, ...] | None = None
    pennylane_updated_at: AwareDatetime | None = None


class ReceiptLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: ShortText
    quantity: Quantity
    unit_price_before_tax: Money
    vat_rate: str = Field(description="Pennylane VAT code, e.g. FR_200", max_length=20)


@register
class ReceiptSendRequested(Payload):
    """'Send to Pennylane' on a purchase receipt: becomes a supplier invoice there."""

    EVENT_TYPE = "outbound.receipt.send_requested"
    TOPIC = OUTBOUND_REQUESTS

    receipt_id: EntityId
    purchase_id: EntityId
    supplier_name: ShortText
    received_on: date
    currency: str = Field(default="EUR", max_length=3)
    lines: tuple[ReceiptLine, ...] = Field(min_length=1, max_length=1000)


@register
class PennylaneIdAssigned(Payload):
    EVENT_TYPE = "outbound.pennylane_id.assigned"
    TOPIC = OUTBOUND_RESULTS

    entity_kind: EntityKind
    entity_id: EntityId
    pennylane_id: PennylaneId


@register
class PennylaneWriteFailed(Payload):
    EVENT_TYPE = "outbound.write.failed"
    TOPIC = OUTBOUND_RESULTS

    entity_kind: EntityKind
    entity_id: EntityId
    reason: ShortText
    retryable: bool
