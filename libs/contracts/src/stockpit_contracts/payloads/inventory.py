"""What inventory tells other services: stock changes, problems and tenant settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stockpit_contracts.payloads.base import (
    EntityId,
    Payload,
    PennylaneId,
    Quantity,
    ShortText,
    register,
)
from stockpit_contracts.payloads.connections import MAX_SYNC_INTERVAL_S, MIN_SYNC_INTERVAL_S
from stockpit_contracts.topics import INVENTORY_PROBLEMS, INVENTORY_SETTINGS, INVENTORY_STOCK


@register
class StockChanged(Payload):
    """Levels of one product at one location after a ledger entry, with the entry's deltas."""

    EVENT_TYPE = "inventory.stock.changed"
    TOPIC = INVENTORY_STOCK

    product_id: EntityId
    pennylane_product_id: PennylaneId | None = None
    location_id: EntityId
    real: Quantity
    reserved: Quantity
    available: Quantity
    incoming: Quantity
    delta_real: Quantity
    delta_reserved: Quantity
    delta_incoming: Quantity
    cause: ShortText = Field(description="what moved the stock: document, delivery note, receipt…")
    ledger_entry_id: EntityId


ProblemKind = Literal[
    "negative_stock", "conflict", "unknown_reference", "rejected_input", "write_failed"
]


@register
class ProblemReported(Payload):
    """Something an operator should look at; the stream went on."""

    EVENT_TYPE = "inventory.problem.reported"
    TOPIC = INVENTORY_PROBLEMS

    kind: ProblemKind
    reason: ShortText
    subject_kind: str = Field(max_length=50)
    subject_id: EntityId


@register
class TenantSettingsChanged(Payload):
    """A tenant's settings as Stockpit (inventory, their one home) holds them after a change.

    The poller schedules the tenant's syncs by `sync_interval_s`; it keeps no setting of its own.
    """

    EVENT_TYPE = "inventory.settings.changed"
    TOPIC = INVENTORY_SETTINGS

    sync_interval_s: int = Field(ge=MIN_SYNC_INTERVAL_S, le=MAX_SYNC_INTERVAL_S)
