"""Pennylane products and customers as the poller reads them from their changelogs."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from stockpit_contracts.payloads.base import Money, Payload, PennylaneId, ShortText, register
from stockpit_contracts.payloads.documents import SERVICE_ACCOUNT_PREFIX
from stockpit_contracts.topics import PENNYLANE_CATALOG


class PostalAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: ShortText
    postal_code: str = Field(max_length=20)
    city: ShortText
    country_alpha2: str = Field(min_length=2, max_length=2)


@register
class ProductUpserted(Payload):
    EVENT_TYPE = "pennylane.product.upserted"
    TOPIC = PENNYLANE_CATALOG

    pennylane_id: PennylaneId
    label: ShortText
    reference: ShortText | None = None
    ledger_account_number: str | None = Field(default=None, max_length=20)
    unit: str | None = Field(default=None, max_length=50)
    price_before_tax: Money | None = None
    vat_rate: str | None = Field(default=None, max_length=20)
    updated_at: AwareDatetime

    @property
    def is_service(self) -> bool:
        return (self.ledger_account_number or "").startswith(SERVICE_ACCOUNT_PREFIX)


@register
class ProductDeleted(Payload):
    EVENT_TYPE = "pennylane.product.deleted"
    TOPIC = PENNYLANE_CATALOG

    pennylane_id: PennylaneId
    deleted_at: AwareDatetime


@register
class CustomerUpserted(Payload):
    EVENT_TYPE = "pennylane.customer.upserted"
    TOPIC = PENNYLANE_CATALOG

    pennylane_id: PennylaneId
    kind: Literal["company", "individual"]
    name: ShortText
    emails: tuple[str, ...] = ()
    billing_address: PostalAddress | None = None
    updated_at: AwareDatetime


@register
class CustomerDeleted(Payload):
    EVENT_TYPE = "pennylane.customer.deleted"
    TOPIC = PENNYLANE_CATALOG

    pennylane_id: PennylaneId
    deleted_at: AwareDatetime
