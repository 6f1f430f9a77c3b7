"""What the outbound service is asked to do (handled in `service_layer.handlers`)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from stockpit_contracts.payloads.outbound import EntityKind


@dataclass(frozen=True, slots=True)
class StoreWrite:
    """A write request from Stockpit, to be sent to Pennylane by the write worker."""

    tenant_id: str
    entity_kind: EntityKind
    entity_id: str
    event_id: UUID
    event_type: str
    envelope: bytes
    # The trace the write continues (W3C traceparent), when tracing is on.
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class ForgetPennylaneCompany:
    """The tenant was re-pointed to another Pennylane company."""

    tenant_id: str


@dataclass(frozen=True, slots=True)
class ReplayDeadLetter:
    dead_letter_id: int
