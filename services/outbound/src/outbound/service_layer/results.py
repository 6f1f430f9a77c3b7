"""Telling inventory what came of a write, through the outbox."""

from __future__ import annotations

from stockpit_contracts import EnvelopeMeta, new_event, partition_key
from stockpit_contracts.payloads.outbound import (
    EntityKind,
    PennylaneIdAssigned,
    PennylaneWriteFailed,
)
from stockpit_contracts.topics import OUTBOUND_RESULTS
from stockpit_runtime.outbox import add_to_outbox

from outbound.service_layer.unit_of_work import UnitOfWork

_MAX_REASON = 2000


async def publish_assigned(
    uow: UnitOfWork,
    *,
    topic_prefix: str,
    request: EnvelopeMeta,
    entity_kind: EntityKind,
    entity_id: str,
    pennylane_id: int,
) -> None:
    payload = PennylaneIdAssigned(
        entity_kind=entity_kind, entity_id=entity_id, pennylane_id=pennylane_id
    )
    await add_to_outbox(
        uow.session,
        OUTBOUND_RESULTS.name(topic_prefix),
        partition_key(request.tenant_id, entity_kind, entity_id),
        [new_event(payload, request.tenant_id, caused_by=request)],
    )


async def publish_failed(
    uow: UnitOfWork,
    *,
    topic_prefix: str,
    request: EnvelopeMeta,
    entity_kind: EntityKind,
    entity_id: str,
    reason: str,
    retryable: bool,
) -> None:
    payload = PennylaneWriteFailed(
        entity_kind=entity_kind,
        entity_id=entity_id,
        reason=reason[:_MAX_REASON],
        retryable=retryable,
    )
    await add_to_outbox(
        uow.session,
        OUTBOUND_RESULTS.name(topic_prefix),
        partition_key(request.tenant_id, entity_kind, entity_id),
        [new_event(payload, request.tenant_id, caused_by=request)],
    )
