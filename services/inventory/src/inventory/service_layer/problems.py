"""Problems and sync runs kept for the tenant's report.

A problem is kept in the transaction that emits it (`UnitOfWork.flush`), with what inventory
knew then (product, location, the document that caused it); the report adds names and numbers
when read. The poller's sync runs arrive over Kafka (`poller.sync_run.finished`); a run that
ended because Pennylane refused the token becomes a problem too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from stockpit_contracts.payloads import inventory as inventory_contract
from stockpit_contracts.payloads import poller as poller_contract

from inventory.adapters import report_store
from inventory.domain import events as domain
from inventory.domain import report
from inventory.domain.commands import AcknowledgeProblem
from inventory.domain.values import TenantId

if TYPE_CHECKING:  # the unit of work keeps problems through `problem_row`
    from inventory.service_layer.unit_of_work import UnitOfWork


def problem_row(
    tenant_id: TenantId,
    fact: object,
    problem: inventory_contract.ProblemReported,
    at: datetime,
) -> dict[str, Any]:
    """The row kept for an emitted problem; `fact` is the domain event behind it, if any."""
    kind: str = problem.kind
    product_id: str | None = None
    location_id: str | None = None
    reference: str | None = None
    match fact:
        case domain.NegativeStock():
            product_id, location_id = str(fact.product_id), str(fact.location_id)
            reference = fact.reference
        case domain.Conflict():
            product_id = str(fact.product_id) if fact.product_id else None
        case domain.UnknownReference():
            reference = fact.referenced_by
        case domain.LikelyDuplicate():
            # Sent as a conflict on the problems topic; the report names it for what it is.
            kind = report.LIKELY_DUPLICATE
            product_id = str(fact.product_id)
    if problem.subject_kind == "product" and product_id is None:
        product_id = problem.subject_id
    return {
        "tenant_id": tenant_id,
        "kind": kind,
        "reported_at": at,
        "reason": problem.reason,
        "subject_kind": problem.subject_kind,
        "subject_id": problem.subject_id,
        "product_id": product_id,
        "location_id": location_id,
        "document_reference": reference,
        "acknowledged_at": None,
    }


# A run every few seconds per tenant adds up: the report keeps a month of them.
SYNC_RUNS_KEPT = timedelta(days=31)


async def apply_sync_run(run: poller_contract.SyncRunFinished, uow: UnitOfWork) -> None:
    await report_store.add_sync_run(
        uow.session,
        {
            "tenant_id": uow.tenant_id,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "streams": list(run.streams),
            "documents_published": run.documents_published,
            "outcome": run.outcome,
            "error_kind": run.error_kind,
            "error": run.error,
        },
        keep_after=uow.now - SYNC_RUNS_KEPT,
    )
    if run.outcome == "succeeded":
        # Pennylane accepts the token again (a new one was connected): no longer a problem.
        await report_store.acknowledge_open(
            uow.session, uow.tenant_id, report.TOKEN_REJECTED, run.finished_at
        )
    elif run.error_kind == "token_rejected":
        await report_store.add_problems(
            uow.session,
            [
                {
                    "tenant_id": uow.tenant_id,
                    "kind": report.TOKEN_REJECTED,
                    "reported_at": run.finished_at,
                    "reason": report.token_rejected_reason(run.error),
                    "subject_kind": "connection",
                    "subject_id": uow.tenant_id,
                    "product_id": None,
                    "location_id": None,
                    "document_reference": None,
                    "acknowledged_at": None,
                }
            ],
        )


async def acknowledge_problem(command: AcknowledgeProblem, uow: UnitOfWork) -> bool | None:
    """True if the problem was open, False if already acknowledged, None if unknown."""
    return await report_store.acknowledge(uow.session, uow.tenant_id, command.problem_id, uow.now)
