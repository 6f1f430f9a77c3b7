"""Handlers for the outbound service's results: Pennylane ids assigned and write failures."""

from __future__ import annotations

from uuid import UUID

from stockpit_contracts.payloads import outbound as outbound_contract

from inventory.domain.errors import DomainError
from inventory.service_layer.messages import problem
from inventory.service_layer.unit_of_work import UnitOfWork


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


async def apply_id_assigned(
    payload: outbound_contract.PennylaneIdAssigned, uow: UnitOfWork
) -> None:
    """Link the Stockpit record to its Pennylane id (DomainError if linked to another)."""
    repo = uow.repo
    entity_id = await _known_entity(uow, payload.entity_kind, payload.entity_id)
    if payload.entity_kind == "customer":
        customer = await repo.customer(entity_id, for_update=True)
        assert customer is not None, "checked by _known_entity"
        customer.link_pennylane_id(payload.pennylane_id)
        await repo.save_customer(customer)
    elif payload.entity_kind == "receipt":
        purchase = await repo.purchase_of_receipt(entity_id, for_update=True)
        assert purchase is not None, "checked by _known_entity"
        purchase.mark_sent(entity_id, payload.pennylane_id)
        await repo.save_purchase(purchase)
    await repo.record_write_status(
        payload.entity_kind, payload.entity_id, "done", pennylane_id=payload.pennylane_id
    )


async def apply_write_failed(
    payload: outbound_contract.PennylaneWriteFailed, uow: UnitOfWork
) -> None:
    """Show the failure: on the receipt (so it can be sent again), in the write status, and
    as a problem for operators."""
    repo = uow.repo
    entity_id = await _known_entity(uow, payload.entity_kind, payload.entity_id)
    if payload.entity_kind == "receipt":
        purchase = await repo.purchase_of_receipt(entity_id, for_update=True)
        assert purchase is not None, "checked by _known_entity"
        purchase.mark_send_failed(entity_id, payload.reason)
        await repo.save_purchase(purchase)
    await repo.record_write_status(
        payload.entity_kind,
        payload.entity_id,
        "failed",
        reason=payload.reason,
        retryable=payload.retryable,
    )
    uow.emit(
        problem(
            uow.tenant_id,
            "write_failed",
            f"writing {payload.entity_kind} to Pennylane failed: {payload.reason}",
            payload.entity_kind,
            payload.entity_id,
        )
    )


async def _known_entity(uow: UnitOfWork, kind: str, raw_id: str) -> UUID:
    """The id of a record of this tenant that a result names; refused (dead-lettered) when the
    tenant has no such record, e.g. a result naming another tenant's customer."""
    entity_id = _uuid(raw_id)
    repo = uow.repo
    found: object | None = None
    if entity_id is not None:
        if kind == "customer":
            found = await repo.customer(entity_id)
        elif kind == "receipt":
            found = await repo.purchase_of_receipt(entity_id)
        elif kind == "product":
            found = await repo.product(entity_id)
    if entity_id is None or found is None:
        raise DomainError(f"no {kind} {raw_id} in this tenant")
    return entity_id
