"""Taking in write requests: each is stored as a pending write, in the consumer's transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession
from stockpit_contracts import Envelope, Payload
from stockpit_contracts.payloads.connections import ConnectionRepointed
from stockpit_contracts.payloads.outbound import (
    CustomerWriteRequested,
    EntityKind,
    ProductChangeRequested,
    ReceiptSendRequested,
)
from stockpit_runtime import tracing
from stockpit_runtime.consumer import PermanentError

from outbound.adapters import repository


def record_of(payload: Payload) -> tuple[EntityKind, str]:
    """The Stockpit record a request writes: its writes keep their order."""
    if isinstance(payload, ProductChangeRequested):
        return "product", payload.product_id
    if isinstance(payload, CustomerWriteRequested):
        return "customer", payload.customer_id
    if isinstance(payload, ReceiptSendRequested):
        return "receipt", payload.receipt_id
    raise PermanentError(f"outbound does not handle {type(payload).__name__}")


async def accept_request(session: AsyncSession, event: Envelope[Payload]) -> None:
    """Store the request; the write worker sends it. A redelivered event is stored once."""
    kind, entity_id = record_of(event.payload)
    await repository.record_write(
        session,
        tenant_id=event.tenant_id,
        entity_kind=kind,
        entity_id=entity_id,
        event_id=event.event_id,
        event_type=event.event_type,
        envelope=event.to_json(),
        now=dt.datetime.now(dt.UTC),
        traceparent=tracing.traceparent_of(event.event_id) if tracing.ACTIVE else None,
    )


async def follow_connection(session: AsyncSession, event: Envelope[Payload]) -> None:
    """A tenant re-pointed to another Pennylane company: forget the old company's ids."""
    if not isinstance(event.payload, ConnectionRepointed):
        raise PermanentError(f"{type(event.payload).__name__} is not a connection event")
    await repository.forget_pennylane_company(session, event.tenant_id, dt.datetime.now(dt.UTC))
