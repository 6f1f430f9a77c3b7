"""The outbound HTTP API: writes waiting or failed, dead letters and their replay.

Every route needs the `operations:admin` scope; lists are paged by cursor (oldest first). Routes
only translate HTTP: reads are `service_layer.views` in a unit of work, the replay a command run
by `run_in_transaction`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import HTTPException, Path, Query, Request, Response
from pydantic import BaseModel
from stockpit_runtime.auth import Problem, Scope, SecureRouter
from stockpit_runtime.pagination import Cursor, Limit, decode_cursor, link_next
from stockpit_runtime.unit_of_work import run_in_transaction

from outbound.domain.commands import ReplayDeadLetter
from outbound.domain.writes import WriteStatus
from outbound.service_layer import handlers, views
from outbound.service_layer.handlers import ReplayResult
from outbound.service_layer.unit_of_work import UnitOfWork


class WriteView(BaseModel):
    id: int
    tenant_id: str
    entity_kind: str
    entity_id: str
    event_type: str
    status: WriteStatus
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    pennylane_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeadLetterView(BaseModel):
    id: int
    write_id: int
    tenant_id: str
    entity_kind: str
    entity_id: str
    request: dict[str, Any] | None
    response: dict[str, Any] | None
    reason: str
    retryable: bool
    attempts: int
    failed_at: dt.datetime
    replayed_at: dt.datetime | None


class ReplayView(BaseModel):
    dead_letter_id: int
    result: ReplayResult


TenantQuery = Annotated[
    str | None, Query(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
]
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ADMIN = Scope.OPERATIONS_ADMIN


def outbound_router(
    new_uow: Callable[[], UnitOfWork], *, wake_worker: Callable[[], None]
) -> SecureRouter:
    router = SecureRouter(prefix="/outbound", tags=["outbound"])

    @router.get("/writes", scope=ADMIN)
    async def list_writes(
        request: Request,
        response: Response,
        status: Annotated[list[Literal["pending", "failed", "done", "superseded"]], Query()] = [  # noqa: B006
            "pending",
            "failed",
        ],
        tenant_id: TenantQuery = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[WriteView]:
        """Writes by status, oldest first: by default those still pending and those that failed."""
        after = decode_cursor(cursor, 1)
        async with new_uow() as uow:
            rows = await views.writes_by_status(
                uow,
                [WriteStatus(s) for s in status],
                tenant_id=tenant_id,
                limit=limit + 1,
                after_id=int(after[0]) if after else None,
            )
        link_next(request, response, (rows[limit - 1].id,) if len(rows) > limit else None)
        return [WriteView.model_validate(row._mapping) for row in rows[:limit]]

    @router.get("/dead-letters", scope=ADMIN)
    async def list_dead_letters(
        request: Request,
        response: Response,
        tenant_id: TenantQuery = None,
        include_replayed: bool = False,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> list[DeadLetterView]:
        """Writes Pennylane refused for good (or that ran out of attempts), oldest first."""
        after = decode_cursor(cursor, 1)
        async with new_uow() as uow:
            rows = await views.dead_letters(
                uow,
                tenant_id=tenant_id,
                include_replayed=include_replayed,
                limit=limit + 1,
                after_id=int(after[0]) if after else None,
            )
        link_next(request, response, (rows[limit - 1].id,) if len(rows) > limit else None)
        return [DeadLetterView.model_validate(row._mapping) for row in rows[:limit]]

    @router.post(
        "/dead-letters/{dead_letter_id}/replay",
        status_code=202,
        scope=ADMIN,
        responses={409: {"model": Problem, "description": "replayed already"}},
    )
    async def replay_dead_letter(dead_letter_id: DeadLetterId) -> ReplayView:
        """Send the write again, with a fresh attempt budget, ahead of its record's later writes."""
        command = ReplayDeadLetter(dead_letter_id)
        result = await run_in_transaction(
            new_uow, lambda uow: handlers.replay_dead_letter(command, uow)
        )
        if result is ReplayResult.NOT_FOUND:
            raise HTTPException(404, f"no dead letter {dead_letter_id}")
        if result is ReplayResult.ALREADY_REPLAYED:
            raise HTTPException(409, f"dead letter {dead_letter_id} was replayed already")
        wake_worker()
        return ReplayView(dead_letter_id=dead_letter_id, result=result)

    return router
